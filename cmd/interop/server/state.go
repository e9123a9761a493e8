package server

import (
	"context"
	"fmt"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// GroupInfo returns a signed GroupInfo with external_pub, with the ratchet
// tree inside it or, for external_tree, beside it.
func (s *Server) GroupInfo(_ context.Context, req *mlsclient.GroupInfoRequest) (*mlsclient.GroupInfoResponse, error) {
	resp := &mlsclient.GroupInfoResponse{}
	err := s.withState(req.StateId, func(e *stateEntry) error {
		st, err := e.current()
		if err != nil {
			return err
		}
		gi, err := st.GroupInfo(group.GroupInfoOptions{WithTree: !req.ExternalTree, WithExternalPub: true})
		if err != nil {
			return err
		}
		if resp.GroupInfo, err = encodeMessage(gi); err != nil {
			return err
		}
		if req.ExternalTree {
			resp.RatchetTree, err = encodeTree(st.Tree().Wire())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// StateAuth returns the epoch authenticator.
func (s *Server) StateAuth(_ context.Context, req *mlsclient.StateAuthRequest) (*mlsclient.StateAuthResponse, error) {
	resp := &mlsclient.StateAuthResponse{}
	err := s.withState(req.StateId, func(e *stateEntry) error {
		st, err := e.current()
		if err != nil {
			return err
		}
		resp.StateAuthSecret = st.EpochAuthenticator()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Export runs the MLS exporter.
func (s *Server) Export(_ context.Context, req *mlsclient.ExportRequest) (*mlsclient.ExportResponse, error) {
	if req.KeyLength > 0xffff {
		return nil, grpcError(fmt.Errorf("%w: key_length %d", ErrBadRequest, req.KeyLength))
	}
	resp := &mlsclient.ExportResponse{}
	err := s.withState(req.StateId, func(e *stateEntry) error {
		st, err := e.current()
		if err != nil {
			return err
		}
		resp.ExportedSecret, err = st.Export(req.Label, req.Context, uint16(req.KeyLength))
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Protect encrypts application data.
func (s *Server) Protect(_ context.Context, req *mlsclient.ProtectRequest) (*mlsclient.ProtectResponse, error) {
	resp := &mlsclient.ProtectResponse{}
	err := s.withState(req.StateId, func(e *stateEntry) error {
		st, err := e.current()
		if err != nil {
			return err
		}
		resp.Ciphertext, err = st.EncryptApplication(req.Plaintext, req.AuthenticatedData)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Unprotect decrypts an application message of this epoch or of an
// earlier epoch the member still keeps.
func (s *Server) Unprotect(_ context.Context, req *mlsclient.UnprotectRequest) (*mlsclient.UnprotectResponse, error) {
	m, err := decodeMessage(req.Ciphertext, wire.WireFormatPrivateMessage, "ciphertext")
	if err != nil {
		return nil, grpcError(err)
	}
	pm := m.PrivateMessage
	if pm.ContentType != wire.ContentApplication {
		return nil, grpcError(fmt.Errorf("%w: ciphertext holds a %v, not application data", ErrBadRequest, pm.ContentType))
	}
	resp := &mlsclient.UnprotectResponse{}
	err = s.withState(req.StateId, func(e *stateEntry) error {
		st := e.s
		if e.superseded || string(pm.GroupID) != string(st.GroupID()) || pm.Epoch != st.Epoch() {
			if st = e.m.pastEpoch(pm.GroupID, pm.Epoch); st == nil {
				return fmt.Errorf("%w: epoch %d of this group is not kept", group.ErrWrongEpoch, pm.Epoch)
			}
		}
		p, err := st.Process(m)
		if err != nil {
			return err
		}
		resp.AuthenticatedData, resp.Plaintext = p.AuthenticatedData, p.ApplicationData
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ratchetTreeOf encodes a state's tree when the caller wants it beside a
// Welcome.
func ratchetTreeOf(st *group.State, external bool) ([]byte, error) {
	if !external || st == nil {
		return nil, nil
	}
	return codec.Marshal(st.Tree().Wire())
}
