-- TYS schema. Idempotent: applied at every start-up.
-- Tables and column types are the seed's (cmx-live), so existing reports and
-- pg_dump backups keep working; additions are marked.

CREATE TABLE IF NOT EXISTS users (
    email varchar(100) NOT NULL PRIMARY KEY,
    salt varchar(255),
    hashed varchar(255),
    admin boolean,
    nickname varchar(255)                 -- the username, as the visitor typed it
);
-- Added: usernames are unique case-insensitively (register races end in a 409).
CREATE UNIQUE INDEX IF NOT EXISTS users_nickname_lower_key ON users (lower(nickname));
-- Added (DESIGN 15): a team, an alias shown on boards instead of the username, staying
-- off the boards, and the organisers' disqualification.
ALTER TABLE users ADD COLUMN IF NOT EXISTS team varchar(64);
ALTER TABLE users ADD COLUMN IF NOT EXISTS team_since timestamptz;  -- joined that team
ALTER TABLE users ADD COLUMN IF NOT EXISTS alias varchar(64);
ALTER TABLE users ADD COLUMN IF NOT EXISTS hidden boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN IF NOT EXISTS disqualified boolean NOT NULL DEFAULT false;
-- Aliases are unique case-insensitively; an alias equal to another user's username is
-- refused in the profile's transaction (store/users.py).
CREATE UNIQUE INDEX IF NOT EXISTS users_alias_lower_key ON users (lower(alias));

CREATE TABLE IF NOT EXISTS devices (
    mac macaddr NOT NULL PRIMARY KEY,
    owner varchar(100) REFERENCES users (email)
);
CREATE INDEX IF NOT EXISTS devices_owner_idx ON devices (owner);

CREATE TABLE IF NOT EXISTS distance (
    mac macaddr PRIMARY KEY,
    mtrs real,                            -- total credited metres
    floor_id bigint,
    point_1 point,                        -- feet, CMX map coordinates
    point_2 point,                        -- newest point; NULL when none yet
    distance_1to2 real,                   -- pending leg (metres)
    time timestamptz                      -- time of the newest accepted point
);
-- Added: the leg held after a sharp turn (DESIGN section 6), so a restart continues exactly.
ALTER TABLE distance ADD COLUMN IF NOT EXISTS held_m real NOT NULL DEFAULT 0;
-- Added: the adaptive filter's state (docs/accuracy.md; held_m holds its stop extension),
-- so a restart continues exactly. walk: 0 none, 1 walking, 2 settled, 3 started, 4 lone;
-- point_0: the point before point_1; cand, cand_time: the gate's previous raw fix (epoch
-- s); jitter_ft: the device's noise, which sizes its gate. Double precision: exact.
ALTER TABLE distance ADD COLUMN IF NOT EXISTS walk smallint NOT NULL DEFAULT 0;
ALTER TABLE distance ADD COLUMN IF NOT EXISTS point_0 point;
ALTER TABLE distance ADD COLUMN IF NOT EXISTS cand point;
ALTER TABLE distance ADD COLUMN IF NOT EXISTS cand_time double precision;
ALTER TABLE distance ADD COLUMN IF NOT EXISTS jitter_ft double precision NOT NULL DEFAULT 18;
-- Added: the adaptive filter's rule D (docs/accuracy.md): run_point, run_m: where the
-- walk's straight run started and the metres it was credited (NULL, 0: no run); zig: the
-- device's share of sharp turns while walking, from the prior 0.15.
ALTER TABLE distance ADD COLUMN IF NOT EXISTS run_point point;
ALTER TABLE distance ADD COLUMN IF NOT EXISTS run_m double precision NOT NULL DEFAULT 0;
ALTER TABLE distance ADD COLUMN IF NOT EXISTS zig double precision NOT NULL DEFAULT 0.15;

CREATE TABLE IF NOT EXISTS count (
    time timestamp PRIMARY KEY,           -- start of the minute, UTC
    user_count integer DEFAULT 0,         -- registered users at that minute
    device_count integer DEFAULT 0,       -- registered devices at that minute
    notification_count integer DEFAULT 0  -- notifications received in that minute
);

CREATE TABLE IF NOT EXISTS distance_history (
    time timestamptz NOT NULL,            -- midnight of the event day (tracking.timezone)
    mac macaddr NOT NULL,
    mtrs real DEFAULT 0.0,
    PRIMARY KEY (time, mac)
);

CREATE TABLE IF NOT EXISTS zone (
    time timestamp NOT NULL,              -- start of the minute, UTC
    name varchar(255) NOT NULL,
    count integer DEFAULT 0,              -- devices seen in that zone in that minute
    PRIMARY KEY (time, name)
);

-- Added: where each feed that can replay (the Spaces Firehose) resumes after a restart,
-- written in the flush transaction that writes the state it describes.
CREATE TABLE IF NOT EXISTS feed_cursor (
    feed text PRIMARY KEY,
    cursor_ms bigint NOT NULL,             -- epoch ms of the newest event in the state
    updated timestamptz
);
