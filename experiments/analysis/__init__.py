"""Analysis: the run table, report data, report.md / report.html and figures, read from run folders."""
