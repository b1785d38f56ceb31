"""What runs the stages in production: publishing a packaged winner (`publish`), and the
Airflow DAGs' settings, asset and steps (`dag_settings`, `dag_steps`). The DAG files in
`dags/` are thin shells over these."""
