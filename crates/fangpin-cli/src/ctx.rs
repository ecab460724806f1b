//! What every command needs: the channel to the server and the request id.

use std::cell::OnceCell;
use std::time::Duration;

use anyhow::Result;
use fangpin_cli::connect::{Conn, Transport};
use uuid::Uuid;

/// A call that takes longer than this is abandoned (the server's own limit
/// is the same by default).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Ctx {
    pub channel: Conn,
    transport: Transport,
    given_request_id: Option<Uuid>,
    used_request_id: OnceCell<String>,
}

impl Ctx {
    /// The channel connects lazily, so a command that fails on its own input
    /// (an unreadable policy file, say) says so without needing a server.
    /// The transport's files (CA, client certificate) are checked now.
    pub fn new(transport: Transport, request_id: Option<Uuid>) -> Result<Self> {
        Ok(Self {
            channel: transport.channel(CALL_TIMEOUT, false)?,
            transport,
            given_request_id: request_id,
            used_request_id: OnceCell::new(),
        })
    }

    /// The server's address, as given.
    pub fn server(&self) -> &str {
        &self.transport.server
    }

    /// A channel whose calls may run for `timeout` instead of the usual
    /// 30 seconds: a feed file of gigabytes takes minutes to stream, and
    /// streams faster when HTTP/2 windows grow past 64 KiB.
    pub fn long_channel(&self, timeout: Duration) -> Result<Conn> {
        self.transport.channel(timeout, true)
    }

    /// The id for this command's one mutating call. It goes to stderr before
    /// the call is sent: if the answer is lost on the network, rerunning the
    /// command with `--request-id <it>` repeats the same request instead of
    /// making a second one (the server replays the first result).
    pub fn request_id(&self) -> String {
        self.used_request_id
            .get_or_init(|| {
                let id = self
                    .given_request_id
                    .unwrap_or_else(Uuid::new_v4)
                    .to_string();
                eprintln!("request id: {id}");
                id
            })
            .clone()
    }

    /// Set once a mutating call was attempted, to tell the user how to retry it.
    pub fn used_request_id(&self) -> Option<&str> {
        self.used_request_id.get().map(String::as_str)
    }
}

/// Follows `next_page_token` until the server has no more, collecting every
/// item; the lists here (one county's claims, one surveyor's queue, one
/// year's postings) are small enough to print whole.
pub async fn all_pages<T>(
    mut fetch: impl AsyncFnMut(String) -> Result<(Vec<T>, String)>,
) -> Result<Vec<T>> {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = fetch(token.clone()).await?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        // A server handing back the same token would loop us forever.
        if next == token {
            anyhow::bail!("the server repeated page token {token:?}");
        }
        token = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn follows_tokens_to_the_end() {
        let mut seen = Vec::new();
        let items = all_pages(async |token: String| {
            seen.push(token.clone());
            Ok(match token.as_str() {
                "" => (vec![1, 2], "p2".to_owned()),
                "p2" => (vec![3], "p3".to_owned()),
                _ => (vec![], String::new()),
            })
        })
        .await
        .expect("pages");
        assert_eq!(items, [1, 2, 3]);
        assert_eq!(seen, ["", "p2", "p3"]);
    }

    #[tokio::test]
    async fn a_repeated_token_stops_the_loop() {
        let result = all_pages(async |_token: String| Ok((vec![1], "same".to_owned()))).await;
        assert!(result.is_err());
    }
}
