"""Transform logic as plain functions (`DataFrame -> DataFrame` and friends), no Dagster here."""
