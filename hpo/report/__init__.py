"""What people look at: the HTML report and the live dashboard.

Modules (imported by path; this package imports nothing itself):

- ``html``: a study as one self-contained HTML file
- ``section``: one heading of the report
- ``view``: which trials a report plots
- ``plotly_js``: plotly.js and figures carried inside the file
- ``retrain_section``: what the report shows of hpo retrain
- ``dashboard``: optuna-dashboard on the study store
"""

__all__ = ["dashboard", "html", "plotly_js", "retrain_section", "section", "view"]
