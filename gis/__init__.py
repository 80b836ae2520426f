"""Pure geospatial core: CRS and Chinese coordinate offsets, geometry repair, dispersion and travel.

Nothing here touches a database, the web or the project's files.
"""
