//! One WebSocket connection to a MONTI server: handshake, subscribe, receive.
//!
//! This is the thin IO layer; [`crate::follow`] adds reconnecting and folding on top. Frames
//! are decoded with the protocol crate's limits, and a server error or close is turned into a
//! [`ClientError`] the caller can match on.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use monti_protocol::access::ViewAs;
use monti_protocol::codec::{DecodeError, decode_server, encode_client};
use monti_protocol::message::{
    AuthInfo, ClientHello, ClientMsg, ErrorCode, ServerHello, ServerMsg, Subscription,
};
use monti_protocol::{PROTOCOL_VERSION, STREAM_PATH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::transport::{Transport, explain};

/// What went wrong with a connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why not.
        reason: &'static str,
    },
    /// The server could not be reached or the connection broke.
    #[error("connection failed: {0}")]
    Io(String),
    /// The server refused or ended the session with a reason.
    #[error("server refused: {message} ({code:?})")]
    Refused {
        /// Why, for the program.
        code: ErrorCode,
        /// Why, for a person.
        message: String,
    },
    /// The server closed the connection.
    #[error("server closed the connection{}", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed {
        /// The close reason, if any.
        reason: Option<String>,
    },
    /// A frame from the server could not be decoded.
    #[error("bad frame from server: {0}")]
    Decode(#[from] DecodeError),
    /// The server said nothing for three keepalive intervals.
    #[error("no data from the server for {0:?}")]
    Silent(Duration),
    /// The server broke the protocol's order.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// What went wrong in a few plain words for a status line, without the technical detail
    /// that [`Display`](std::fmt::Display) gives (which belongs on hover and in logs).
    pub fn words(&self) -> String {
        match self {
            ClientError::BadUrl { .. } => "the server address is not valid".to_owned(),
            ClientError::Io(detail) => io_words(detail).to_owned(),
            ClientError::Refused {
                code: ErrorCode::ShuttingDown,
                ..
            } => "the server is restarting".to_owned(),
            ClientError::Refused {
                code: ErrorCode::TooSlow,
                ..
            } => "this computer fell behind the stream".to_owned(),
            ClientError::Refused {
                code: ErrorCode::TooManyConnections,
                ..
            } => "the server is full".to_owned(),
            ClientError::Refused {
                code: ErrorCode::Unauthorized,
                ..
            } => "sign-in needed".to_owned(),
            ClientError::Refused {
                code: ErrorCode::Forbidden,
                ..
            } => "not allowed to see this".to_owned(),
            ClientError::Refused {
                code: ErrorCode::VersionMismatch,
                ..
            } => "this app and the server differ in version".to_owned(),
            ClientError::Refused { .. } | ClientError::Protocol(_) | ClientError::Decode(_) => {
                "the server sent something this app cannot read".to_owned()
            }
            ClientError::Closed { .. } => "the server closed the connection".to_owned(),
            ClientError::Silent(_) => "the server stopped answering".to_owned(),
        }
    }

    /// Whether retrying cannot help (the versions differ, or the client is not allowed).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ClientError::BadUrl { .. }
                | ClientError::Refused {
                    code: ErrorCode::VersionMismatch
                        | ErrorCode::Forbidden
                        | ErrorCode::Unauthorized
                        | ErrorCode::UnknownTeam
                        | ErrorCode::UnknownSite,
                    ..
                }
        )
    }
}

/// Plain words for a connection failure, from the explained error's text (the causes come
/// from several libraries as text, so this reads the text).
fn io_words(detail: &str) -> &'static str {
    let detail = detail.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| detail.contains(word));
    if has(&["certificate"]) {
        "the server's certificate is not trusted"
    } else if has(&[
        "failed to lookup",
        "dns",
        "name or service not known",
        "nodename",
    ]) {
        "server name not found"
    } else if has(&[
        "connection refused",
        "os error 111",
        "unreachable",
        "os error 113",
    ]) {
        "server unreachable"
    } else if has(&["timed out", "no answer", "os error 110"]) {
        "server not answering"
    } else if has(&["proxy"]) {
        "the proxy refused the connection"
    } else if has(&["reset", "broken pipe", "closed", "eof"]) {
        "connection broken"
    } else {
        "connection failed"
    }
}

/// The stream URL for a server given as `http(s)://host:port` or `ws(s)://host:port`, with the
/// protocol version in the query so a mismatch is refused before the upgrade.
pub fn stream_url(server: &str) -> Result<String, ClientError> {
    let server = server.trim_end_matches('/');
    let bad = |reason| ClientError::BadUrl {
        url: server.to_owned(),
        reason,
    };
    let rest = if let Some(rest) = server.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = server.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if server.starts_with("ws://") || server.starts_with("wss://") {
        server.to_owned()
    } else {
        return Err(bad("it must start with http://, https://, ws:// or wss://"));
    };
    let base = rest
        .split_once(STREAM_PATH)
        .map_or(rest.as_str(), |(base, _)| base);
    Ok(format!("{base}{STREAM_PATH}?protocol={PROTOCOL_VERSION}"))
}

/// The stream URL of [`stream_url`] for an administrator's test access: the floor as `view_as`
/// would see it.
pub fn stream_url_as(server: &str, view_as: Option<&ViewAs>) -> Result<String, ClientError> {
    let mut url = stream_url(server)?;
    if let Some(view_as) = view_as {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in view_as.query() {
            query.append_pair(key, &value);
        }
        url.push('&');
        url.push_str(&query.finish());
    }
    Ok(url)
}

/// An open, handshaken connection, plain or over TLS, straight or through a proxy's tunnel.
pub struct Connection {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    hello: ServerHello,
    /// Server clock minus local clock at the handshake, in ms (includes half a round trip).
    clock_offset_ms: i64,
    last_heard: Instant,
}

impl Connection {
    /// Connects with the system's trust store and proxy settings and exchanges hellos, without
    /// a token (servers with auth mode none).
    pub async fn connect(server: &str, client_name: &str) -> Result<Connection, ClientError> {
        let transport = Transport::system().map_err(|err| ClientError::Io(err.to_string()))?;
        Connection::connect_with(&transport, server, client_name, None).await
    }

    /// Connects through `transport` presenting `token` as a bearer token, and exchanges hellos.
    pub async fn connect_with(
        transport: &Transport,
        server: &str,
        client_name: &str,
        token: Option<&str>,
    ) -> Result<Connection, ClientError> {
        Connection::connect_as(transport, server, client_name, token, None).await
    }

    /// Like [`Connection::connect_with`], seeing the floor as `view_as` would (an
    /// administrator's test access; the server refuses anyone else).
    pub async fn connect_as(
        transport: &Transport,
        server: &str,
        client_name: &str,
        token: Option<&str>,
        view_as: Option<&ViewAs>,
    ) -> Result<Connection, ClientError> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = stream_url_as(server, view_as)?;
        let mut request =
            url.as_str()
                .into_client_request()
                .map_err(|err| ClientError::BadUrl {
                    url: url.clone(),
                    reason: if err.to_string().is_empty() {
                        "invalid"
                    } else {
                        "not a WebSocket URL"
                    },
                })?;
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                ClientError::Protocol("the token is not a valid header value".into())
            })?;
            request.headers_mut().insert("authorization", value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(monti_protocol::codec::MAX_SERVER_FRAME))
            .max_frame_size(Some(monti_protocol::codec::MAX_SERVER_FRAME));
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("ws").to_owned();
        // Without the brackets of an IPv6 literal: the transport adds them where they belong.
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "wss" { 443 } else { 80 });
        let connect = async {
            let tcp = transport
                .tcp(&scheme, &host, port)
                .await
                .map_err(ClientError::Io)?;
            tokio_tungstenite::client_async_tls_with_config(
                request,
                tcp,
                Some(config),
                Some(Connector::Rustls(transport.tls())),
            )
            .await
            .map_err(|err| upgrade_error(&url, err))
        };
        let (socket, _) = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| ClientError::Io(format!("no answer from {url} within 10 s")))??;
        let mut connection = Connection {
            socket,
            hello: ServerHello {
                protocol_version: 0,
                server_time_ms: 0,
                server_name: String::new(),
                keepalive_ms: 10_000,
                instance: 0,
                auth: AuthInfo::None,
            },
            clock_offset_ms: 0,
            last_heard: Instant::now(),
        };
        connection
            .send(&ClientMsg::Hello(ClientHello {
                protocol_version: PROTOCOL_VERSION,
                client_name: client_name.to_owned(),
            }))
            .await?;
        match connection.recv().await? {
            ServerMsg::Hello(hello) => {
                connection.clock_offset_ms = hello.server_time_ms as i64 - now_ms() as i64;
                connection.hello = hello;
                Ok(connection)
            }
            other => Err(ClientError::Protocol(format!(
                "expected Hello, got {other:?}"
            ))),
        }
    }

    /// The server's hello.
    pub fn hello(&self) -> &ServerHello {
        &self.hello
    }

    /// Server clock minus local clock, in milliseconds, as measured at the handshake.
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// Asks for a view; the server answers with snapshot chunks, then deltas.
    pub async fn subscribe(&mut self, sub: &Subscription) -> Result<(), ClientError> {
        self.send(&ClientMsg::Subscribe(sub.clone())).await
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), ClientError> {
        let frame = encode_client(msg).map_err(|err| ClientError::Protocol(err.to_string()))?;
        self.socket
            .send(Message::Binary(frame.into()))
            .await
            .map_err(|err| ClientError::Io(explain(&err)))
    }

    /// The next server message, decoded. A server `Error` message becomes [`ClientError::Refused`].
    pub async fn recv(&mut self) -> Result<ServerMsg, ClientError> {
        let frame = self.recv_frame().await?;
        match decode_server(&frame)? {
            ServerMsg::Error(error) => Err(ClientError::Refused {
                code: error.code,
                message: error.message,
            }),
            msg => Ok(msg),
        }
    }

    /// The next binary frame, undecoded (the load generator measures bytes). Fails when the
    /// server stays silent for three keepalive intervals.
    pub async fn recv_frame(&mut self) -> Result<Vec<u8>, ClientError> {
        let silence = Duration::from_millis(u64::from(self.hello.keepalive_ms.max(100)) * 3);
        loop {
            let wait = silence.saturating_sub(self.last_heard.elapsed());
            let message = match tokio::time::timeout(wait, self.socket.next()).await {
                Err(_) => return Err(ClientError::Silent(silence)),
                Ok(None) => return Err(ClientError::Closed { reason: None }),
                Ok(Some(Err(err))) => return Err(ClientError::Io(explain(&err))),
                Ok(Some(Ok(message))) => message,
            };
            self.last_heard = Instant::now();
            match message {
                Message::Binary(frame) => return Ok(frame.into()),
                Message::Close(frame) => {
                    return Err(ClientError::Closed {
                        reason: frame
                            .map(|frame| format!("{} ({})", frame.reason, u16::from(frame.code))),
                    });
                }
                Message::Text(_) => {
                    return Err(ClientError::Protocol("server sent a text frame".into()));
                }
                // Pings are answered by tungstenite on the next read or write.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// Turns a failed upgrade into a readable error, using the server's JSON error body if any.
fn upgrade_error(url: &str, err: tokio_tungstenite::tungstenite::Error) -> ClientError {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Http(response) => {
            let status = response.status();
            let message = response
                .body()
                .as_ref()
                .and_then(|body| {
                    serde_json::from_slice::<monti_protocol::rest::ErrorJson>(body).ok()
                })
                .map_or_else(|| format!("HTTP {status}"), |body| body.message);
            let code = match status.as_u16() {
                426 => ErrorCode::VersionMismatch,
                503 => ErrorCode::TooManyConnections,
                401 => ErrorCode::Unauthorized,
                403 => ErrorCode::Forbidden,
                _ => ErrorCode::Internal,
            };
            ClientError::Refused { code, message }
        }
        other => {
            let host = url.split('/').nth(2).unwrap_or(url);
            ClientError::Io(format!("{host}: {}", explain(&other)))
        }
    }
}

/// Milliseconds since the Unix epoch, by the local clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_become_stream_urls() {
        assert_eq!(
            stream_url("http://127.0.0.1:8080").expect("valid"),
            format!("ws://127.0.0.1:8080/api/v1/stream?protocol={PROTOCOL_VERSION}")
        );
        assert_eq!(
            stream_url("ws://h:1/").expect("valid"),
            format!("ws://h:1/api/v1/stream?protocol={PROTOCOL_VERSION}")
        );
        assert_eq!(
            stream_url("https://floor.example.com").expect("valid"),
            format!("wss://floor.example.com/api/v1/stream?protocol={PROTOCOL_VERSION}")
        );
        assert!(stream_url("localhost:8080").is_err());
    }

    /// The plain words for a failed connection come from real failures, not made-up texts.
    #[tokio::test]
    async fn real_connection_failures_read_as_plain_words() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = closed.local_addr().expect("address").port();
        drop(closed);
        let connect = |server: String| async move {
            let transport = Transport::system().expect("the system's trust store");
            match Connection::connect_with(&transport, &server, "test", None).await {
                Ok(_) => panic!("{server} answered"),
                Err(err) => err,
            }
        };
        let refused = connect(format!("http://127.0.0.1:{port}")).await;
        assert_eq!(refused.words(), "server unreachable", "{refused}");
        let unknown = connect("http://monti-does-not-exist.invalid:8080".to_owned()).await;
        assert_eq!(unknown.words(), "server name not found", "{unknown}");
        let bad = ClientError::BadUrl {
            url: "floor".to_owned(),
            reason: "no scheme",
        };
        assert_eq!(bad.words(), "the server address is not valid");
        // A refusal keeps its detail in the message and says what it means in the words.
        let restarting = ClientError::Refused {
            code: ErrorCode::ShuttingDown,
            message: "server shutting down".to_owned(),
        };
        assert_eq!(restarting.words(), "the server is restarting");
    }
}
