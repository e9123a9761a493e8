package group

import (
	"bytes"
	"fmt"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// welcome builds the Welcome of a commit for the members it added
// (§12.4.3.1). next is the new epoch, epoch its secrets.
func (next *State) welcome(epoch *keyschedule.Epoch, pv *provisional, own *ratchettree.OwnPath, opts CommitOptions) (*wire.Welcome, error) {
	cs := next.cs
	gi, err := next.GroupInfo(GroupInfoOptions{WithTree: opts.WelcomeWithTree, WithExternalPub: opts.WelcomeExternalPub})
	if err != nil {
		return nil, err
	}
	giEnc, err := codec.Marshal(gi)
	if err != nil {
		return nil, err
	}
	key, nonce, err := keyschedule.WelcomeKeyNonce(cs, epoch.WelcomeSecret)
	if err != nil {
		return nil, err
	}
	egi, err := cs.Seal(nil, key, nonce, nil, giEnc)
	clear(key)
	if err != nil {
		return nil, err
	}
	w := &wire.Welcome{CipherSuite: cs, EncryptedGroupInfo: egi}
	for i, l := range pv.added {
		kp := pv.addedKPs[i]
		gs := wire.GroupSecrets{JoinerSecret: epoch.JoinerSecret, PSKs: pv.psks}
		if own != nil {
			if ps, _, ok := own.PathSecretFor(l); ok {
				gs.PathSecret, gs.HasPathSecret = ps, true
			}
		}
		plain, err := codec.Marshal(&gs)
		if err != nil {
			return nil, err
		}
		kem, ct, err := cs.EncryptWithLabel(kp.InitKey, "Welcome", egi, plain, next.cfg.rand())
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("group: encrypting welcome to leaf %d: %w", l, err)
		}
		ref, err := kp.Ref()
		if err != nil {
			return nil, err
		}
		w.Secrets = append(w.Secrets, wire.EncryptedGroupSecrets{NewMember: ref, EncryptedGroupSecrets: wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}})
	}
	return w, nil
}

// JoinOptions supply what a Welcome may leave out.
type JoinOptions struct {
	// Tree is the group's ratchet tree, for Welcomes without the
	// ratchet_tree extension.
	Tree wire.RatchetTree
	// Resumed is the state of the group being reinitialized or branched,
	// for Welcomes carrying a reinit or branch PSK.
	Resumed *State
}

func invalidWelcome(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidWelcome, fmt.Sprintf(format, args...))
}

// findTree returns the tree of a GroupInfo's ratchet_tree extension, or the
// one given.
func findTree(exts wire.Extensions, given wire.RatchetTree) (wire.RatchetTree, error) {
	if data, ok := exts.Find(wire.ExtensionRatchetTree); ok {
		var rt wire.RatchetTree
		if err := codec.Unmarshal(data, &rt); err != nil {
			return nil, fmt.Errorf("ratchet_tree extension: %w", err)
		}
		return rt, nil
	}
	if given == nil {
		return nil, ErrTreeMissing
	}
	return given, nil
}

// JoinWelcome joins a group from a Welcome made for bundle's KeyPackage
// (§12.4.3.1). The caller should delete bundle's init key afterwards
// (unless it is a last-resort KeyPackage).
func JoinWelcome(cfg *Config, w *wire.Welcome, bundle *KeyPackageBundle, opts JoinOptions) (*State, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	kp := bundle.KeyPackage
	cs := kp.CipherSuite
	if w.CipherSuite != cs {
		return nil, invalidWelcome("cipher suite %v, key package uses %v", w.CipherSuite, cs)
	}
	ref := bundle.Ref()
	var egs *wire.EncryptedGroupSecrets
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			egs = &w.Secrets[i]
			break
		}
	}
	if egs == nil {
		return nil, ErrNoMatchingKeyPackage
	}
	if bundle.InitKey == nil {
		return nil, invalidWelcome("init key already used")
	}
	plain, err := cs.DecryptWithLabel(bundle.InitKey, "Welcome", w.EncryptedGroupInfo, egs.EncryptedGroupSecrets.KEMOutput, egs.EncryptedGroupSecrets.Ciphertext)
	if err != nil {
		return nil, invalidWelcome("group secrets: %v", err)
	}
	defer clear(plain)
	var gs wire.GroupSecrets
	if err := codec.Unmarshal(plain, &gs); err != nil {
		return nil, invalidWelcome("group secrets: %v", err)
	}

	// PSKs: external ones from the store, resumption ones from the
	// resumed group or the store. At most one reinit/branch PSK.
	var resumed *wire.PreSharedKeyID
	for i := range gs.PSKs {
		id := &gs.PSKs[i]
		if id.Type == wire.PSKResumption && id.Usage != wire.ResumptionApplication {
			if resumed != nil {
				return nil, invalidWelcome("several reinit or branch PSKs")
			}
			resumed = id
		}
	}
	psk, err := pskSecret(cfg, cs, gs.PSKs, opts.Resumed)
	if err != nil {
		return nil, err
	}
	welcomeSecret := keyschedule.WelcomeSecret(cs, gs.JoinerSecret, psk)
	key, nonce, err := keyschedule.WelcomeKeyNonce(cs, welcomeSecret)
	clear(welcomeSecret)
	if err != nil {
		return nil, err
	}
	giEnc, err := cs.Open(nil, key, nonce, nil, w.EncryptedGroupInfo)
	clear(key)
	if err != nil {
		return nil, invalidWelcome("group info does not decrypt")
	}
	var gi wire.GroupInfo
	if err := codec.Unmarshal(giEnc, &gi); err != nil {
		return nil, invalidWelcome("group info: %v", err)
	}
	if gi.GroupContext.CipherSuite != cs {
		return nil, invalidWelcome("group info cipher suite %v", gi.GroupContext.CipherSuite)
	}
	if gi.GroupContext.Version != wire.MLS10 {
		return nil, invalidWelcome("group version %d", gi.GroupContext.Version)
	}
	tree, err := verifiedTree(cfg, &gi, opts.Tree)
	if err != nil {
		return nil, err
	}

	// Find our leaf: identical to the KeyPackage's.
	x, ok := tree.FindEncryptionKey(kp.LeafNode.EncryptionKey)
	if !ok || !x.IsLeaf() {
		return nil, invalidWelcome("own leaf not in the tree")
	}
	me := x.Leaf()
	if !bytes.Equal(codec.MustMarshal(tree.Leaf(me)), codec.MustMarshal(&kp.LeafNode)) {
		return nil, invalidWelcome("own leaf differs from the key package")
	}
	// The joiner must support the group's extensions and required
	// capabilities itself (§12.4.3.1, §13.4): its real capabilities, not
	// the GREASE values its KeyPackage may advertise (§13.5).
	rc, _ := requiredCapabilities(gi.GroupContext.Extensions) // checked by verifiedTree
	if m := unsupported(ownCapabilities(&kp.LeafNode.Capabilities), gi.GroupContext.Extensions, rc); m != "" {
		return nil, invalidWelcome("group needs unsupported %s", m)
	}
	priv := ratchettree.NewPrivateKeys(me, bundle.EncryptionKey)
	if gs.HasPathSecret {
		if tree.Leaf(LeafIndex(gi.Signer)) == nil || LeafIndex(gi.Signer) == me {
			return nil, invalidWelcome("path secret without a committer")
		}
		anc := treemath.CommonAncestor(me.Node(), LeafIndex(gi.Signer).Node())
		if err := priv.ImportPathSecret(tree, anc, gs.PathSecret); err != nil {
			return nil, invalidWelcome("path secret: %v", err)
		}
	}
	ctxEnc, err := codec.Marshal(&gi.GroupContext)
	if err != nil {
		return nil, err
	}
	epoch := keyschedule.FromJoiner(cs, gs.JoinerSecret, psk, ctxEnc)
	epoch.ForgetJoinerSecrets()
	if err := framing.VerifyConfirmationTag(cs, epoch.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		epoch.Destroy()
		return nil, ErrBadConfirmationTag
	}
	if resumed != nil {
		if err := checkResumption(resumed, &gi, tree, opts.Resumed); err != nil {
			epoch.Destroy()
			return nil, err
		}
	}
	return newEpochState(cfg, gi.GroupContext, tree, me, priv, bundle.Signer, epoch, gi.ConfirmationTag, nil)
}

// verifiedTree builds the tree of a GroupInfo, checks that it matches the
// GroupInfo's tree hash and signature, and validates it (§12.4.3.1).
func verifiedTree(cfg *Config, gi *wire.GroupInfo, given wire.RatchetTree) (*ratchettree.Tree, error) {
	rt, err := findTree(gi.Extensions, given)
	if err != nil {
		return nil, err
	}
	cs := gi.GroupContext.CipherSuite
	tree, err := ratchettree.FromWire(cs, rt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
	}
	if !bytes.Equal(tree.TreeHash(), gi.GroupContext.TreeHash) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidGroupInfo, ratchettree.ErrTreeHash)
	}
	signer := tree.Leaf(LeafIndex(gi.Signer))
	if signer == nil {
		return nil, fmt.Errorf("%w: signer %d is not a member", ErrInvalidGroupInfo, gi.Signer)
	}
	// The signature covers the whole tree (megabytes with X-Wing keys): it
	// is checked on another core while the tree is verified, and its
	// failure reported first.
	sigErr := make(chan error, 1)
	go func() { sigErr <- gi.VerifySignature(signer.SignatureKey) }()
	rc, rcErr := requiredCapabilities(gi.GroupContext.Extensions)
	var treeErr error
	if rcErr == nil {
		treeErr = tree.Verify(gi.GroupContext.GroupID, ratchettree.LeafCheck{Required: rc, ValidateCredential: cfg.ValidateCredential})
	}
	if err := <-sigErr; err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrInvalidGroupInfo, err)
	}
	for _, err := range []error{rcErr, treeErr} {
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidGroupInfo, err)
		}
	}
	return tree, nil
}

// checkResumption applies the reinit and branch rules of §12.4.3.1 to a
// new group joined with a resumption PSK.
func checkResumption(id *wire.PreSharedKeyID, gi *wire.GroupInfo, tree *ratchettree.Tree, old *State) error {
	if gi.GroupContext.Epoch != 1 {
		return invalidWelcome("resumed group at epoch %d, want 1", gi.GroupContext.Epoch)
	}
	if old == nil {
		return nil // the application checks membership itself
	}
	switch id.Usage {
	case wire.ResumptionReInit:
		ri := old.reinit
		if ri == nil {
			return invalidWelcome("resumed group was not reinitialized")
		}
		c := gi.GroupContext
		if !bytes.Equal(ri.GroupID, c.GroupID) || ri.Version != c.Version || ri.CipherSuite != c.CipherSuite || !ri.Extensions.Equal(c.Extensions) {
			return invalidWelcome("new group does not match the ReInit")
		}
	case wire.ResumptionBranch:
		if old.ctx.Version != gi.GroupContext.Version || old.cs != gi.GroupContext.CipherSuite {
			return invalidWelcome("branch changes version or cipher suite")
		}
		for _, l := range tree.LeafIndices() {
			if !old.hasIdentity(&tree.Leaf(l).Credential) {
				return invalidWelcome("branch member %d is not in the old group", l)
			}
		}
	}
	return nil
}

// hasIdentity reports whether a member of the group presents cred.
func (s *State) hasIdentity(cred *wire.Credential) bool {
	for _, l := range s.tree.LeafIndices() {
		if s.tree.Leaf(l).Credential.Equal(cred) {
			return true
		}
	}
	return false
}
