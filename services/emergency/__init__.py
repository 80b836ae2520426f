"""Emergency warning: a spill's reach downstream, an air threat zone, and who must be told (issue 6)."""
