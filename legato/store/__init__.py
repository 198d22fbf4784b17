"""The only package that speaks SQL: tables, migrations, and the queries behind the service."""
