"""Gold: catalog snapshots as of each partition date, served to BI."""
