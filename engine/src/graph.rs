//! Graph builder: volfile + registry → linked translator graph.
