"""The comparison report of a results directory: tables, figures and the HTML/Markdown pages
(:mod:`.report`)."""
