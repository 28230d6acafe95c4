"""The in-browser runner: the same model running in the tablet's own browser (LiteRT.js).

site.py lists the files of the /app/ site (page, runtime, web model) and exports them as a
static folder; server.py serves them from edge-run --serve. See docs/tablet.md.
"""
