"""The comparison report of a results directory (:func:`.report.build_report`), one module per
part: :mod:`.model` (the store's summaries as entries), :mod:`.metrics` (the figures read and
derived), :mod:`.tables`, :mod:`.figures` (matplotlib), :mod:`.contents` (what the page says),
:mod:`.render` (Jinja pages from templates/report/, CSV), :mod:`.text` (numbers as text)."""
