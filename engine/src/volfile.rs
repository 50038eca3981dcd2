//! Volfile parser and printer (GlusterFS syntax).
