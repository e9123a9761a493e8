// Package edverify verifies Ed25519 signatures (RFC 8032 §5.1.7) under
// public keys that are used again and again, such as a group member's
// signature key, several times faster than crypto/ed25519: a Key holds a
// table of multiples of its point, made once, so that verification is a
// fixed-base multiplication instead of a variable-base one.
//
// It accepts exactly what crypto/ed25519.Verify accepts. The point and
// scalar decoding are filippo.io/edwards25519's, the code the standard
// library's own copy is made from, and the check is the one the standard
// library makes (cofactorless: the encoding of [S]B - [k]A must equal R
// byte for byte, with S canonical); only the way [S]B - [k]A is computed
// differs, and a group element does not depend on how it is computed.
//
// Verification handles public data only, so this code runs in variable
// time. It must never be used with secret scalars.
package edverify

import (
	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// point is a point of edwards25519 in extended coordinates (X:Y:Z:T),
// x = X/Z, y = Y/Z, xy = T/Z ("Twisted Edwards curves revisited",
// Hisil, Wong, Carter and Dawson, 2008).
type point struct {
	x, y, z, t field.Element
}

// affine is a point with Z = 1 kept in the form mixed addition takes:
// y+x, y-x and 2d·x·y.
type affine struct {
	ypx, ymx, t2d field.Element
}

var (
	feOne = new(field.Element).One()
	// d2 is 2d, d = -121665/121666 (RFC 8032 §5.1).
	d2 = func() *field.Element {
		num := new(field.Element).Mult32(feOne, 121665)
		den := new(field.Element).Mult32(feOne, 121666)
		d := new(field.Element).Multiply(num, den.Invert(den))
		d.Negate(d)
		return d.Add(d, d)
	}()
)

// fromEdwards sets p to q.
func (p *point) fromEdwards(q *edwards25519.Point) *point {
	x, y, z, t := q.ExtendedCoordinates()
	p.x.Set(x)
	p.y.Set(y)
	p.z.Set(z)
	p.t.Set(t)
	return p
}

func (p *point) setIdentity() *point {
	p.x.Zero()
	p.y.One()
	p.z.One()
	p.t.Zero()
	return p
}

// add sets p = a + b (add-2008-hwcd-3, complete for a = -1).
func (p *point) add(a, b *point) *point {
	var pa, pb, c, d, e, f, g, h, u field.Element
	pa.Subtract(&a.y, &a.x)
	u.Subtract(&b.y, &b.x)
	pa.Multiply(&pa, &u)
	pb.Add(&a.y, &a.x)
	u.Add(&b.y, &b.x)
	pb.Multiply(&pb, &u)
	c.Multiply(&a.t, &b.t)
	c.Multiply(&c, d2)
	d.Multiply(&a.z, &b.z)
	d.Add(&d, &d)
	e.Subtract(&pb, &pa)
	f.Subtract(&d, &c)
	g.Add(&d, &c)
	h.Add(&pb, &pa)
	p.x.Multiply(&e, &f)
	p.y.Multiply(&g, &h)
	p.t.Multiply(&e, &h)
	p.z.Multiply(&f, &g)
	return p
}

// double sets p = 2a (dbl-2008-hwcd with a = -1).
func (p *point) double(a *point) *point {
	var pa, pb, c, e, f, g, h field.Element
	pa.Square(&a.x)
	pb.Square(&a.y)
	c.Square(&a.z)
	c.Add(&c, &c)
	e.Add(&a.x, &a.y)
	e.Square(&e)
	e.Subtract(&e, &pa)
	e.Subtract(&e, &pb)
	// D = -A; G = D + B; F = G - C; H = D - B.
	g.Subtract(&pb, &pa)
	f.Subtract(&g, &c)
	h.Add(&pa, &pb)
	h.Negate(&h)
	p.x.Multiply(&e, &f)
	p.y.Multiply(&g, &h)
	p.t.Multiply(&e, &h)
	p.z.Multiply(&f, &g)
	return p
}

// addAffine sets p = a + b, or a - b when neg is set
// (madd-2008-hwcd-3: add-2008-hwcd-3 with Z2 = 1).
func (p *point) addAffine(a *point, b *affine, neg bool) *point {
	ypx, ymx := &b.ypx, &b.ymx
	if neg { // -(x, y) = (-x, y): y+x and y-x swap, and xy changes sign
		ypx, ymx = ymx, ypx
	}
	var pa, pb, c, d, e, f, g, h field.Element
	pa.Subtract(&a.y, &a.x)
	pa.Multiply(&pa, ymx)
	pb.Add(&a.y, &a.x)
	pb.Multiply(&pb, ypx)
	c.Multiply(&a.t, &b.t2d)
	d.Add(&a.z, &a.z)
	e.Subtract(&pb, &pa)
	h.Add(&pb, &pa)
	if neg {
		f.Add(&d, &c)
		g.Subtract(&d, &c)
	} else {
		f.Subtract(&d, &c)
		g.Add(&d, &c)
	}
	p.x.Multiply(&e, &f)
	p.y.Multiply(&g, &h)
	p.t.Multiply(&e, &h)
	p.z.Multiply(&f, &g)
	return p
}

// bytes encodes p (RFC 8032 §5.1.2): y, with the sign of x in the top bit.
func (p *point) bytes(out *[32]byte) {
	var zinv, x, y field.Element
	zinv.Invert(&p.z)
	x.Multiply(&p.x, &zinv)
	y.Multiply(&p.y, &zinv)
	copy(out[:], y.Bytes())
	out[31] |= byte(x.IsNegative() << 7)
}

// toAffine converts ps to affine form with one inversion for all
// (Montgomery's trick).
func toAffine(out []affine, ps []point) {
	acc := make([]field.Element, len(ps))
	var run field.Element
	run.One()
	for i := range ps {
		acc[i].Set(&run)
		run.Multiply(&run, &ps[i].z)
	}
	run.Invert(&run) // 1 / (Z0·Z1·…·Zn-1)
	var zinv, x, y field.Element
	for i := len(ps) - 1; i >= 0; i-- {
		zinv.Multiply(&run, &acc[i]) // 1/Zi
		run.Multiply(&run, &ps[i].z)
		x.Multiply(&ps[i].x, &zinv)
		y.Multiply(&ps[i].y, &zinv)
		out[i].ypx.Add(&y, &x)
		out[i].ymx.Subtract(&y, &x)
		out[i].t2d.Multiply(&x, &y)
		out[i].t2d.Multiply(&out[i].t2d, d2)
	}
}
