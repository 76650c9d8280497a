"""The book: notebook set-up, glue, plots, the scorecard and the generated pages."""
