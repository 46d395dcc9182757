/** Hearth rendezvous server: key-authenticated WebSocket signaling, presence, SQLite store, serves the viewer, hosts the relay. */
export {};
