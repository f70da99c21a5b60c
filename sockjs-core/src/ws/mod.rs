//! WebSocket layer.
