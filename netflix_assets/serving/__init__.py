"""Serving the lake to BI tools: a SQL endpoint (Spark's Thrift JDBC/ODBC server) whose
catalog registers the lake's Delta tables as external tables."""
