package api

import "context"

// The Backend methods of Client, one request each. Errors the daemon
// returns are *Error values that unwrap to the sentinels of backend.go.

func (c *Client) Identity(ctx context.Context) (Identity, error) {
	var id Identity
	if err := c.call(ctx, MethodIdentity, nil, &id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

func (c *Client) ContactCode(ctx context.Context) (string, error) {
	var r codeResult
	err := c.call(ctx, MethodContactCode, nil, &r)
	return r.Code, err
}

func (c *Client) AddContact(ctx context.Context, code, name string) (Contact, error) {
	var ct Contact
	if err := c.call(ctx, MethodAddContact, addContactParams{Code: code, Name: name}, &ct); err != nil {
		return Contact{}, err
	}
	return ct, nil
}

func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	var list []Contact
	if err := c.call(ctx, MethodContacts, nil, &list); err != nil {
		return nil, err
	}
	return list, nil
}

func (c *Client) RemoveContact(ctx context.Context, contact string) error {
	return c.call(ctx, MethodRemoveContact, contactParams{Contact: contact}, nil)
}

func (c *Client) RenameContact(ctx context.Context, contact, name string) (Contact, error) {
	var ct Contact
	if err := c.call(ctx, MethodRenameContact, renameContactParams{Contact: contact, Name: name}, &ct); err != nil {
		return Contact{}, err
	}
	return ct, nil
}

func (c *Client) CreateGroup(ctx context.Context, name string, opts ...GroupOption) (Group, error) {
	var g Group
	s := NewGroupSettings(opts...)
	if err := c.call(ctx, MethodCreateGroup, createGroupParams{Name: name, Suite: suiteParam(s.Suite)}, &g); err != nil {
		return Group{}, err
	}
	return g, nil
}

func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var list []Group
	if err := c.call(ctx, MethodGroups, nil, &list); err != nil {
		return nil, err
	}
	return list, nil
}

func (c *Client) Members(ctx context.Context, group string) ([]Member, error) {
	var list []Member
	if err := c.call(ctx, MethodMembers, groupParams{Group: group}, &list); err != nil {
		return nil, err
	}
	return list, nil
}

func (c *Client) Invite(ctx context.Context, group, contact string) error {
	return c.call(ctx, MethodInvite, inviteParams{Group: group, Contact: contact}, nil)
}

func (c *Client) InviteCode(ctx context.Context, group string, opts ...InviteOption) (string, error) {
	var r inviteCodeResult
	s := NewInviteSettings(opts...)
	p := inviteCodeParams{Group: group, Approve: s.Approve}
	if s.ByMembers {
		p.ApproveBy = s.ApproveBy() // an older daemon refuses the field rather than make another code
	}
	err := c.call(ctx, MethodInviteCode, p, &r)
	return r.Code, err
}

func (c *Client) JoinRequests(ctx context.Context) ([]JoinRequest, error) {
	var list []JoinRequest
	if err := c.call(ctx, MethodJoinRequests, nil, &list); err != nil {
		return nil, err
	}
	return list, nil
}

func (c *Client) Approve(ctx context.Context, request string) error {
	return c.call(ctx, MethodApprove, requestParams{ID: request}, nil)
}

func (c *Client) Deny(ctx context.Context, request string) error {
	return c.call(ctx, MethodDeny, requestParams{ID: request}, nil)
}

func (c *Client) Join(ctx context.Context, code string) (Group, error) {
	var g Group
	if err := c.call(ctx, MethodJoin, codeParams{Code: code}, &g); err != nil {
		return Group{}, err
	}
	return g, nil
}

func (c *Client) Remove(ctx context.Context, group, member string) error {
	return c.call(ctx, MethodRemove, removeParams{Group: group, Member: member}, nil)
}

func (c *Client) Leave(ctx context.Context, group string) error {
	return c.call(ctx, MethodLeave, groupParams{Group: group}, nil)
}

func (c *Client) ForgetGroup(ctx context.Context, group string, force bool) error {
	return c.call(ctx, MethodForgetGroup, forgetParams{Group: group, Force: force}, nil)
}

func (c *Client) Send(ctx context.Context, group, text string) (string, error) {
	var r idResult
	err := c.call(ctx, MethodSend, sendParams{Group: group, Text: text}, &r)
	return r.ID, err
}

// SendFile sends the file at path, which must be absolute: it is opened
// by the daemon, whose working directory is not the caller's.
func (c *Client) SendFile(ctx context.Context, group, path string) (string, error) {
	var r idResult
	err := c.call(ctx, MethodSendFile, sendFileParams{Group: group, Path: path}, &r)
	return r.ID, err
}

func (c *Client) Read(ctx context.Context, group string, after uint64, limit int) ([]Message, error) {
	var list []Message
	if err := c.call(ctx, MethodRead, readParams{Group: group, After: after, Limit: limit}, &list); err != nil {
		return nil, err
	}
	return list, nil
}

func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	if err := c.call(ctx, MethodStatus, nil, &st); err != nil {
		return Status{}, err
	}
	return st, nil
}
