"""The query kit shared by the OGC API routes and the analyses: SQL built clause by clause, values bound.

``clauses`` (:class:`~services.query.clauses.Clause`, joins, bound parameters, the SQL type of a field,
envelope/equality/intersection conditions), ``views`` (a layer as a role sees it), ``cql`` and
``cql_text`` (CQL2 text and JSON to a clause; the grammar patch of pygeofilter), ``crs`` (CRS
negotiation), ``params`` (query parameters validated at the edge) and ``filters`` (the conditions a
request puts on a collection).  Nothing here knows a route: ``services.web.ogc`` and the analyses import
this package, never the other way round.
"""
