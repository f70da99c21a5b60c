//! SockJS on tokio.
