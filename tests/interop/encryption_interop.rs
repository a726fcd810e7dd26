//! Message stream encryption with real clients, each set to make and take encrypted connections
//! only (libtorrent `forced` with RC4, `transmission-cli -er`, aria2c `--bt-require-crypto` with
//! `arc4`, qBittorrent's "Require encryption"), both ways: since such a client never connects a
//! peer that cannot encrypt, each download that completes went over MSE. btorrent runs its default
//! policy (`allow`: a plain dial is hung up on, and it dials again encrypted; encrypted connections
//! taken), `prefer` or `require`. The drivers are the plain tests' ([`crate::engine_interop`]).

use crate::engine_interop::{btorrent_seeds_to, seeds_to_btorrent, Client};
use btorrent::engine::Encryption;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_to_libtorrent_that_requires_encryption() {
    btorrent_seeds_to(Client::Libtorrent, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_that_requires_encryption_seeds_to_btorrent_that_requires_it() {
    seeds_to_btorrent(Client::Libtorrent, true, true, Encryption::Require).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn btorrent_seeds_to_transmission_that_requires_encryption() {
    // Transmission never dials 127.x peers: our seeder dials it, plain first, then encrypted.
    btorrent_seeds_to(Client::Transmission, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn transmission_that_requires_encryption_seeds_to_btorrent() {
    seeds_to_btorrent(Client::Transmission, false, true, Encryption::Allow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn btorrent_seeds_to_aria2c_that_requires_encryption() {
    btorrent_seeds_to(Client::Aria2, true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn aria2c_that_requires_encryption_seeds_to_btorrent_that_prefers_it() {
    seeds_to_btorrent(Client::Aria2, false, true, Encryption::Prefer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qbittorrent-nox and curl"]
async fn btorrent_seeds_to_qbittorrent_that_requires_encryption() {
    btorrent_seeds_to(Client::Qbittorrent, true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qbittorrent-nox and curl"]
async fn qbittorrent_that_requires_encryption_seeds_to_btorrent() {
    seeds_to_btorrent(Client::Qbittorrent, false, true, Encryption::Allow).await;
}
