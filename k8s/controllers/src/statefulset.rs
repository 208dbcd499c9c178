//! The StatefulSet controller (being written).
use lichen_client::Client;
use tokio::task::JoinSet;

use crate::Informers;

pub fn start(_tasks: &mut JoinSet<()>, _client: &Client, _informers: &Informers) {}
