package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/cmd/node/api"
)

// Contacts are kept in the store (scope "contact", key the peer ID) with
// the code they were added from.
const scopeContact = "contact"

type contactRecord struct {
	Name string `json:"name"`
	Code string `json:"code"`
}

type contact struct {
	peerID peer.ID
	name   string
	code   *contactCode
}

func (n *Node) contactList() []*contact {
	recs, err := n.st.Settings(n.ctx, scopeContact)
	if err != nil {
		return nil
	}
	var out []*contact
	for _, raw := range recs {
		var r contactRecord
		if json.Unmarshal(raw, &r) != nil {
			continue
		}
		c, err := parseContactCode(r.Code)
		if err != nil {
			continue
		}
		out = append(out, &contact{peerID: c.PeerID, name: r.Name, code: c})
	}
	return out
}

// findContact finds a contact by name, peer ID or fingerprint.
func (n *Node) findContact(ref string) (*contact, error) {
	var found []*contact
	for _, c := range n.contactList() {
		if c.name == ref || c.peerID.String() == ref || strings.EqualFold(c.name, ref) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no contact %q; 'parley contacts' lists yours", api.ErrNotFound, ref)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %d contacts match %q; use the peer ID", api.ErrAmbiguous, len(found), ref)
}

// ContactCode implements api.Backend.
func (n *Node) ContactCode(ctx context.Context) (string, error) {
	kp, err := n.lastResortKeyPackage(ctx, DefaultSuite)
	if err != nil {
		return "", err
	}
	c := &contactCode{PeerID: n.id.PeerID, Name: n.id.Name, Addrs: n.p2p.AddrInfo().Addrs, KeyPackage: kp}
	return c.String(), nil
}

// AddContact implements api.Backend.
func (n *Node) AddContact(ctx context.Context, code, name string) (api.Contact, error) {
	n.contactMu.Lock()
	defer n.contactMu.Unlock()
	c, err := parseContactCode(code)
	if err != nil {
		return api.Contact{}, err
	}
	if err := n.checkKeyPackage(c.KeyPackage, c.PeerID, 0); err != nil {
		return api.Contact{}, fmt.Errorf("%w: %v", api.ErrBadCode, err)
	}
	if c.PeerID == n.id.PeerID {
		return api.Contact{}, fmt.Errorf("%w: that is your own contact code", api.ErrInvalid)
	}
	if name == "" {
		name = c.Name
	}
	if err := CheckName(name); err != nil {
		return api.Contact{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	for _, other := range n.contactList() {
		if other.name == name && other.peerID != c.PeerID {
			return api.Contact{}, fmt.Errorf("%w: a contact named %q; choose another with --name", api.ErrExists, name)
		}
	}
	rec, _ := json.Marshal(contactRecord{Name: name, Code: code})
	b := n.st.NewBatch()
	b.PutSetting(scopeContact, c.PeerID.String(), rec)
	if err := n.st.Write(ctx, b); err != nil {
		return api.Contact{}, err
	}
	n.p2p.AddPeerAddrs(c.PeerID, c.Addrs, peerstoreTTL)
	n.goBackground(func() { n.dial(n.ctx, c.PeerID, c.Addrs) })
	return n.apiContact(&contact{peerID: c.PeerID, name: name, code: c}), nil
}

func (n *Node) apiContact(c *contact) api.Contact {
	addrs := make([]string, len(c.code.Addrs))
	for i, a := range c.code.Addrs {
		addrs[i] = a.String()
	}
	fp := ""
	if pub, err := c.peerID.ExtractPublicKey(); err == nil {
		if raw, err := pub.Raw(); err == nil {
			fp = Fingerprint(raw)
		}
	}
	online, via := n.peerPath(c.peerID)
	return api.Contact{Name: c.name, PeerID: c.peerID.String(), Fingerprint: fp, Addrs: addrs, Online: online, Via: via}
}

// peerPath says whether the node is connected to p and, if it is, how:
// "direct" or "relay" (api.Contact.Via, api.Member.Via).
func (n *Node) peerPath(p peer.ID) (online bool, via string) {
	if !n.p2p.Connected(p) {
		return false, ""
	}
	return true, n.p2p.PathTo(p).String()
}

// Contacts implements api.Backend.
func (n *Node) Contacts(context.Context) ([]api.Contact, error) {
	var out []api.Contact
	for _, c := range n.contactList() {
		out = append(out, n.apiContact(c))
	}
	return out, nil
}
