"""Charts of the gold KPIs (Dagster metadata) and the static HTML report (`make report`)."""
