"""Tests of the maps: the style document, the web pages in a real browser, and the report maps."""
