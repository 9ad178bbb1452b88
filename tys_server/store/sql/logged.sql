-- Applied with database.unlogged: false (the default), so switching back is one restart.
ALTER TABLE count SET LOGGED;
ALTER TABLE distance SET LOGGED;
ALTER TABLE distance_history SET LOGGED;
ALTER TABLE zone SET LOGGED;
ALTER TABLE feed_cursor SET LOGGED;
