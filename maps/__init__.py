"""Maps: the planner web viewer, the mobile page, and report maps (folium HTML, static PNG)."""
