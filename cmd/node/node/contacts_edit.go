package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// RemoveContact implements api.Backend: it deletes the contact's record.
// Groups the contact is in keep it (that is Remove), and so do the
// peer's addresses in the peer book, which any peer's connection adds.
func (n *Node) RemoveContact(ctx context.Context, ref string) error {
	n.contactMu.Lock()
	defer n.contactMu.Unlock()
	c, err := n.findContact(ref)
	if err != nil {
		return err
	}
	b := n.st.NewBatch()
	b.DeleteSetting(scopeContact, c.peerID.String())
	if err := n.st.Write(ctx, b); err != nil {
		return err
	}
	n.log.Info("contact removed", "contact", c.name, "peer_id", c.peerID.String())
	return nil
}

// RenameContact implements api.Backend: the contact is known by name on
// this node from now on ('parley invite', 'parley contacts'). Members of
// a group show the name each chose for itself, as before.
func (n *Node) RenameContact(ctx context.Context, ref, name string) (api.Contact, error) {
	n.contactMu.Lock()
	defer n.contactMu.Unlock()
	if err := CheckName(name); err != nil {
		return api.Contact{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	c, err := n.findContact(ref)
	if err != nil {
		return api.Contact{}, err
	}
	for _, other := range n.contactList() {
		if other.name == name && other.peerID != c.peerID {
			return api.Contact{}, fmt.Errorf("%w: a contact named %q already", api.ErrExists, name)
		}
	}
	rec, err := json.Marshal(contactRecord{Name: name, Code: c.code.String()})
	if err != nil {
		return api.Contact{}, err
	}
	b := n.st.NewBatch()
	b.PutSetting(scopeContact, c.peerID.String(), rec)
	if err := n.st.Write(ctx, b); err != nil {
		return api.Contact{}, err
	}
	c.name = name
	return n.apiContact(c), nil
}
