-- Applied only with database.unlogged: true. An UNLOGGED table is truncated
-- whole after a PostgreSQL crash: see README "Logged or unlogged tables".
ALTER TABLE count SET UNLOGGED;
ALTER TABLE distance SET UNLOGGED;
ALTER TABLE distance_history SET UNLOGGED;
ALTER TABLE zone SET UNLOGGED;
-- The feed cursors go with the state they describe: truncated together.
ALTER TABLE feed_cursor SET UNLOGGED;
