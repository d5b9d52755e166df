"""droptop's terminal UI: the only package that imports Textual.

The CLI imports `droptop.tui.app.run_tui` lazily, so batch mode, export and the
collectors never load Textual.
"""
