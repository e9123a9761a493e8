package api

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
)

// handler runs one method against the Backend: it decodes and checks the
// params and returns the result to encode.
type handler func(ctx context.Context, b Backend, params json.RawMessage) (any, error)

// methods is the server's method table. auth and subscribe are not in it:
// they change the connection and are handled by it.
var methods = map[string]handler{
	MethodIdentity: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		if err := decodeParams(MethodIdentity, raw, &struct{}{}); err != nil {
			return nil, err
		}
		return b.Identity(ctx)
	},
	MethodContactCode: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		if err := decodeParams(MethodContactCode, raw, &struct{}{}); err != nil {
			return nil, err
		}
		code, err := b.ContactCode(ctx)
		return codeResult{Code: code}, err
	},
	MethodAddContact: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p addContactParams
		if err := decodeParams(MethodAddContact, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodAddContact, "code", p.Code); err != nil {
			return nil, err
		}
		return b.AddContact(ctx, p.Code, p.Name)
	},
	MethodContacts: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		if err := decodeParams(MethodContacts, raw, &struct{}{}); err != nil {
			return nil, err
		}
		return nonNil(b.Contacts(ctx))
	},
	MethodRemoveContact: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p contactParams
		if err := decodeParams(MethodRemoveContact, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodRemoveContact, "contact", p.Contact); err != nil {
			return nil, err
		}
		return okResult{}, b.RemoveContact(ctx, p.Contact)
	},
	MethodRenameContact: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p renameContactParams
		if err := decodeParams(MethodRenameContact, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodRenameContact, "contact", p.Contact, "name", p.Name); err != nil {
			return nil, err
		}
		return b.RenameContact(ctx, p.Contact, p.Name)
	},
	MethodCreateGroup: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p createGroupParams
		if err := decodeParams(MethodCreateGroup, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodCreateGroup, "name", p.Name); err != nil {
			return nil, err
		}
		if p.Suite != "" {
			return b.CreateGroup(ctx, p.Name, WithSuite(string(p.Suite)))
		}
		return b.CreateGroup(ctx, p.Name)
	},
	MethodGroups: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		if err := decodeParams(MethodGroups, raw, &struct{}{}); err != nil {
			return nil, err
		}
		return nonNil(b.Groups(ctx))
	},
	MethodMembers: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p groupParams
		if err := decodeParams(MethodMembers, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodMembers, "group", p.Group); err != nil {
			return nil, err
		}
		return nonNil(b.Members(ctx, p.Group))
	},
	MethodInvite: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p inviteParams
		if err := decodeParams(MethodInvite, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodInvite, "group", p.Group, "contact", p.Contact); err != nil {
			return nil, err
		}
		return okResult{}, b.Invite(ctx, p.Group, p.Contact)
	},
	MethodJoinRequests: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		if err := decodeParams(MethodJoinRequests, raw, &struct{}{}); err != nil {
			return nil, err
		}
		return nonNil(b.JoinRequests(ctx))
	},
	MethodApprove: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p requestParams
		if err := decodeParams(MethodApprove, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodApprove, "id", p.ID); err != nil {
			return nil, err
		}
		return okResult{}, b.Approve(ctx, p.ID)
	},
	MethodDeny: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p requestParams
		if err := decodeParams(MethodDeny, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodDeny, "id", p.ID); err != nil {
			return nil, err
		}
		return okResult{}, b.Deny(ctx, p.ID)
	},
	MethodInviteCode: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p inviteCodeParams
		if err := decodeParams(MethodInviteCode, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodInviteCode, "group", p.Group); err != nil {
			return nil, err
		}
		var opts []InviteOption
		switch {
		case p.ApproveBy == ApproveByMembers:
			opts = append(opts, WithApprovalByMembers())
		case p.ApproveBy == ApproveByInviter || p.ApproveBy == "" && p.Approve:
			opts = append(opts, WithApproval())
		case p.ApproveBy != "":
			return nil, fmt.Errorf("%w: %s: params.approve_by is %q or %q, not %q", ErrInvalid, MethodInviteCode, ApproveByInviter, ApproveByMembers, p.ApproveBy)
		}
		code, err := b.InviteCode(ctx, p.Group, opts...)
		if err != nil {
			return nil, err
		}
		return inviteCodeResult{Code: code, ApproveBy: NewInviteSettings(opts...).ApproveBy()}, nil
	},
	MethodJoin: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p codeParams
		if err := decodeParams(MethodJoin, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodJoin, "code", p.Code); err != nil {
			return nil, err
		}
		return b.Join(ctx, p.Code)
	},
	MethodRemove: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p removeParams
		if err := decodeParams(MethodRemove, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodRemove, "group", p.Group, "member", p.Member); err != nil {
			return nil, err
		}
		return okResult{}, b.Remove(ctx, p.Group, p.Member)
	},
	MethodLeave: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p groupParams
		if err := decodeParams(MethodLeave, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodLeave, "group", p.Group); err != nil {
			return nil, err
		}
		return okResult{}, b.Leave(ctx, p.Group)
	},
	MethodForgetGroup: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p forgetParams
		if err := decodeParams(MethodForgetGroup, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodForgetGroup, "group", p.Group); err != nil {
			return nil, err
		}
		return okResult{}, b.ForgetGroup(ctx, p.Group, p.Force)
	},
	MethodSend: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p sendParams
		if err := decodeParams(MethodSend, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodSend, "group", p.Group, "text", p.Text); err != nil {
			return nil, err
		}
		id, err := b.Send(ctx, p.Group, p.Text)
		return idResult{ID: id}, err
	},
	MethodSendFile: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p sendFileParams
		if err := decodeParams(MethodSendFile, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodSendFile, "group", p.Group, "path", p.Path); err != nil {
			return nil, err
		}
		if !filepath.IsAbs(p.Path) {
			return nil, fmt.Errorf("%w: %s: path %q is not absolute (the daemon does not know your working directory)", ErrInvalid, MethodSendFile, p.Path)
		}
		id, err := b.SendFile(ctx, p.Group, p.Path)
		return idResult{ID: id}, err
	},
	MethodRead: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		var p readParams
		if err := decodeParams(MethodRead, raw, &p); err != nil {
			return nil, err
		}
		if err := required(MethodRead, "group", p.Group); err != nil {
			return nil, err
		}
		if p.Limit < 0 {
			return nil, fmt.Errorf("%w: %s: limit %d is negative", ErrInvalid, MethodRead, p.Limit)
		}
		return nonNil(b.Read(ctx, p.Group, p.After, p.Limit))
	},
	MethodStatus: func(ctx context.Context, b Backend, raw json.RawMessage) (any, error) {
		if err := decodeParams(MethodStatus, raw, &struct{}{}); err != nil {
			return nil, err
		}
		st, err := b.Status(ctx)
		if st.Groups == nil {
			st.Groups = []GroupStatus{}
		}
		return st, err
	},
}

// required checks that the named string params (name, value pairs) are
// not empty.
func required(method string, nameValues ...string) error {
	for i := 0; i+1 < len(nameValues); i += 2 {
		if nameValues[i+1] == "" {
			return fmt.Errorf("%w: %s: params.%s is required", ErrInvalid, method, nameValues[i])
		}
	}
	return nil
}

// nonNil turns a nil slice result into an empty one, so it encodes as []
// rather than null.
func nonNil[T any](list []T, err error) ([]T, error) {
	if list == nil {
		list = []T{}
	}
	return list, err
}
