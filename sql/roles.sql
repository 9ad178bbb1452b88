-- Run once as the PostgreSQL superuser on a production server:
--   sudo -u postgres psql -v password='s3cret' -f sql/roles.sql
--   sudo -u postgres createdb -O cmx cmx
-- cmx owns its database, so it may create and alter the TYS tables: the service
-- applies sql/schema.sql itself at every start (see README "Deployment").
SELECT 'CREATE ROLE cmx LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cmx') \gexec
ALTER ROLE cmx LOGIN PASSWORD :'password';
