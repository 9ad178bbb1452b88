-- Run once as the PostgreSQL superuser on a production server, e.g.
--   sudo -u postgres psql -v password="'s3cret'" -f sql/roles.sql
-- then: sudo -u postgres createdb -O cmx cmx   (see README "Deployment").
-- The service applies sql/schema.sql itself at start-up (it owns its tables).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cmx') THEN
        CREATE ROLE cmx LOGIN;
    END IF;
END
$$;
ALTER ROLE cmx LOGIN PASSWORD :password;

-- For a database created by another owner: let cmx use every TYS table.
GRANT ALL ON ALL TABLES IN SCHEMA public TO cmx;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO cmx;
