-- Every phrase anyone transformed. `append_id` makes appends idempotent: a retried append
-- carries the same id and is stored once.
create table history (
    id integer primary key autoincrement,
    append_id text not null unique,
    original text not null,
    figalized text not null,
    created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- The number of rows, kept in the same transaction as every insert.
create table history_total (
    only_row integer primary key check (only_row = 1),
    total integer not null
);
insert into history_total (only_row, total) values (1, 0);
