//! Faults of the real processes around the backend (the mail relay, PostgreSQL, the disk): each
//! is a clear answer to the person and nothing lost.

mod cut_off;
mod database_restart;
mod disk_full;
mod mail_outage;
mod two_instances;
