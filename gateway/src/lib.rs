//! The gateway: config, state store, volume manager, brick supervisor, REST API.
