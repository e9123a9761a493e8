package ratchettree

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformedTree reports a serialized tree that breaks a structural
	// rule: a node of the wrong type at a position, a trailing blank, an
	// empty tree.
	ErrMalformedTree = errors.New("ratchettree: malformed tree")
	// ErrDuplicateKey reports an encryption or signature key used twice.
	ErrDuplicateKey = errors.New("ratchettree: key used by more than one node")
	// ErrUnmergedLeaves reports an unmerged_leaves list that is not
	// consistent with the tree (§12.4.3.1).
	ErrUnmergedLeaves = errors.New("ratchettree: invalid unmerged leaves")
	// ErrParentHash reports a parent node or leaf whose parent hash does not
	// verify (§7.9.2).
	ErrParentHash = errors.New("ratchettree: parent hash mismatch")
	// ErrTreeHash reports a tree whose hash differs from the expected one.
	ErrTreeHash = errors.New("ratchettree: tree hash mismatch")
	// ErrInvalidLeaf reports a LeafNode that fails validation (§7.3); the
	// wrapped error says which rule.
	ErrInvalidLeaf = errors.New("ratchettree: invalid leaf node")
	// ErrPathLength reports an UpdatePath whose length or ciphertext count
	// does not match the filtered direct path and resolutions.
	ErrPathLength = errors.New("ratchettree: update path does not match the tree")
	// ErrPathKey reports an UpdatePath whose public keys do not match the
	// path secrets it carries.
	ErrPathKey = errors.New("ratchettree: update path public key does not match its path secret")
	// ErrNoDecryptionKey reports that no private key can decrypt the path
	// secret meant for this member.
	ErrNoDecryptionKey = errors.New("ratchettree: no private key for the update path")
	// ErrPathDecryption reports a path secret that does not decrypt.
	ErrPathDecryption = errors.New("ratchettree: path secret decryption failed")
	// ErrBlankLeaf reports an operation on a blank or out-of-range leaf.
	ErrBlankLeaf = errors.New("ratchettree: leaf is blank or out of range")
)

// The rules of LeafNode validation (§7.3), each wrapping ErrInvalidLeaf.
var (
	ErrLeafSource            = fmt.Errorf("%w: wrong leaf_node_source", ErrInvalidLeaf)
	ErrLeafCredential        = fmt.Errorf("%w: credential rejected", ErrInvalidLeaf)
	ErrLeafSignature         = fmt.Errorf("%w: signature does not verify", ErrInvalidLeaf)
	ErrLeafPublicKey         = fmt.Errorf("%w: malformed public key", ErrInvalidLeaf)
	ErrLeafOwnCredential     = fmt.Errorf("%w: credential type not in its own capabilities", ErrInvalidLeaf)
	ErrLeafExtension         = fmt.Errorf("%w: extension not in its capabilities", ErrInvalidLeaf)
	ErrLeafRequired          = fmt.Errorf("%w: required capability not supported", ErrInvalidLeaf)
	ErrLeafLifetime          = fmt.Errorf("%w: outside its lifetime", ErrInvalidLeaf)
	ErrLeafKeyUnchanged      = fmt.Errorf("%w: update keeps the encryption key", ErrInvalidLeaf)
	ErrLeafCredentialSupport = fmt.Errorf("%w: credential types not supported across the group", ErrInvalidLeaf)
)
