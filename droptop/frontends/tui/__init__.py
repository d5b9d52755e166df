"""droptop's terminal UI: the only package that imports Textual.

The CLI imports `droptop.frontends.tui.app.run_tui` lazily, so batch mode, export and the
collectors never load Textual.
"""
