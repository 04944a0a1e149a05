package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/propertywebbuilder/pwb/internal/account"
)

func (a *app) usersCommand() *cobra.Command {
	return group("users", "Platform logins: create the super-admins who use /admin",
		a.usersCreateAdminCommand(),
	)
}

func (a *app) usersCreateAdminCommand() *cobra.Command {
	var email string
	var asJSON bool
	c := &cobra.Command{
		Use:   "create-admin --email E [--json]",
		Short: "Create a platform super-admin, who signs in to /admin",
		Long: `Creates a new user with the platform's super-admin role, who may sign in to
the platform admin at /admin on the platform's own host. The password is read
from standard input (one line), or asked for without echo on a terminal; it is
never a flag, so it stays out of shell history and process lists.

The email must not belong to any user yet, site admins included: a platform
login is an account of its own, never a site admin's promoted.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if email == "" {
				return usagef("--email is required")
			}
			norm, err := account.NormalizeEmail(email)
			if err != nil {
				return usagef("--email: %v", err)
			}
			_, primary, err := a.primary()
			if err != nil {
				return err
			}
			// Checked before asking for a password that would be thrown away.
			if u, err := account.FindUserByEmail(a.ctx, primary, norm); err == nil {
				return emailTaken(norm, u.ID)
			} else if !errors.Is(err, account.ErrNotFound) {
				return err
			}
			pw, err := a.readPassword()
			if err != nil {
				return err
			}
			u, err := account.CreateSuperAdmin(a.ctx, primary, norm, pw)
			if errors.Is(err, account.ErrConflict) { // taken since the check
				return emailTaken(norm, 0)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(struct {
					ID    int64  `json:"id"`
					Email string `json:"email"`
				}{u.ID, u.Email})
			}
			fmt.Fprintf(a.stdout, "Created super-admin %s (user %d). Sign in at /admin on the platform's own host, e.g. http://localhost:3000/admin\n", u.Email, u.ID)
			return nil
		},
	}
	c.Flags().StringVar(&email, "email", "", "the super-admin's email address, not used by any user yet")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"id", "email"} as JSON`)
	return c
}

// emailTaken refuses an email that is already a user's, suggesting a
// sub-address of it, which mail servers commonly deliver to the same inbox.
func emailTaken(email string, userID int64) error {
	who := "a user"
	if userID != 0 {
		who = fmt.Sprintf("user %d", userID)
	}
	suggestion := "another email"
	if at := strings.LastIndex(email, "@"); at > 0 {
		suggestion = fmt.Sprintf("another email, such as %s+platform%s", email[:at], email[at:])
	}
	return fmt.Errorf("%s is already the email of %s: a platform login must be an account of its own, so use %s", email, who, suggestion)
}
