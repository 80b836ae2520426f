"""Extract, normalise and load: from the files bureaus have to the PostGIS layers."""
