// Package store keeps a Parley node's state on disk: identity, KeyPackage
// private keys, per group the retained epoch snapshots and the head, the
// received-message log, the outbox, delivered message ids, settings and
// the peer book.
//
// It implements the storage interfaces its consumers (the group loop,
// ordering, the node, p2p) declare; values are opaque bytes. Every state
// change is recorded in a Batch, and Store.Write commits any number of
// batches in one badger transaction that is on disk (fsync) before Write
// returns. Spent secrets are deleted in the same transaction that spends
// them.
//
// The database is encrypted at rest with a random data key, itself sealed
// under a key from a key file or from a passphrase (argon2id). README.md
// gives the threat model and what remains on disk after deletion.
package store
