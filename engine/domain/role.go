package domain

import "fmt"

// Role is what an API token may do. Each role includes the ones below it:
// an admin may do everything, an operator everything a viewer may.
type Role string

// The roles, weakest first.
const (
	// RoleViewer reads: tasks, proplets, workflows, jobs, artifacts, events.
	RoleViewer Role = "viewer"
	// RoleOperator also runs things: creates, starts, stops and deletes
	// tasks, workflows and jobs; pushes, imports, exports and removes
	// artifacts.
	RoleOperator Role = "operator"
	// RoleAdmin also manages access: API tokens and devices.
	RoleAdmin Role = "admin"
)

// Roles lists the roles, weakest first.
func Roles() []Role { return []Role{RoleViewer, RoleOperator, RoleAdmin} }

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r may do what need may: r is need or a stronger
// role. An invalid role is at least nothing.
func (r Role) AtLeast(need Role) bool { return r.Valid() && r.rank() >= need.rank() }

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("%w: role %q: want viewer, operator or admin", ErrInvalid, s)
}
