package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// ---- messages ----

type adminMessagesData struct {
	Messages []content.Message
	Total    int
	Pager    pager
}

func (s *Server) adminMessages(w http.ResponseWriter, r *http.Request) error {
	page := pageParam(r)
	ms, total, err := content.ListMessages(r.Context(), siteFrom(r.Context()).Scope, page, adminPerPage)
	if err != nil {
		return err
	}
	return s.renderAdmin(w, r, http.StatusOK, "admin/messages", view{Title: "Messages",
		Data: adminMessagesData{Messages: ms, Total: total, Pager: newPager(r, page, total, adminPerPage)}})
}

func (s *Server) adminMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	m, err := content.GetMessage(r.Context(), siteFrom(r.Context()).Scope, id)
	if err != nil {
		return err
	}
	return s.renderAdmin(w, r, http.StatusOK, "admin/message", view{Title: "Message from " + m.ContactName, Data: m})
}

func (s *Server) markMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := parseForm(w, r, maxSmallForm); err != nil {
		return err
	}
	var read bool
	switch r.PostForm.Get("read") {
	case "1":
		read = true
	case "0":
	default:
		return errorPage(http.StatusBadRequest, "Bad request", "Say whether to mark the message read (1) or unread (0). Nothing was changed.")
	}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		return content.SetMessageRead(r.Context(), sc, id, read)
	}); err != nil {
		return err
	}
	done := "unread"
	if read {
		done = "read"
	}
	return redirectDone(w, r, "/site_admin/messages/"+id.String(), done)
}

// ---- pages ----

func (s *Server) adminPages(w http.ResponseWriter, r *http.Request) error {
	ps, err := content.ListPages(r.Context(), siteFrom(r.Context()).Scope, false)
	if err != nil {
		return err
	}
	return s.renderAdmin(w, r, http.StatusOK, "admin/pages", view{Title: "Pages", Data: ps})
}

// pageForm is the page form as typed.
type pageForm struct {
	Slug, Title, Body, NavOrder string
	Visible                     bool
}

type pageFormData struct {
	Form pageForm
	Page *content.Page // nil on the new-page form
}

func pageFormOf(p content.Page) pageForm {
	return pageForm{Slug: p.Slug, Title: p.Title, Body: p.Body, NavOrder: strconv.Itoa(p.NavOrder), Visible: p.Visible}
}

func readPageForm(r *http.Request) (pageForm, content.PageInput, fieldErr) {
	get := r.PostForm.Get
	f := pageForm{Slug: get("slug"), Title: get("title"), Body: get("body"), NavOrder: get("nav_order"),
		Visible: get("visible") != "" && get("visible") != "0"}
	in := content.PageInput{Slug: f.Slug, Title: f.Title, Body: f.Body, Visible: f.Visible}
	fields := fieldErr{}
	if s := strings.TrimSpace(f.NavOrder); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			fields["nav_order"] = "Navigation order must be a whole number such as 10."
		}
		in.NavOrder = n
	}
	for k, msg := range invalidFields(in.Validate()) {
		if _, ok := fields[k]; !ok {
			fields[k] = msg
		}
	}
	return f, in, fields
}

const (
	notSavedPage = "The page was not saved. Please correct the fields marked below."
	slugTaken    = "That address is already used by another page."
)

func (s *Server) renderPageForm(w http.ResponseWriter, r *http.Request, status int, d pageFormData, fields fieldErr, msg string) error {
	title := "New page"
	if d.Page != nil {
		title = "Edit page"
	}
	return s.renderAdmin(w, r, status, "admin/page_form", view{Title: title, Data: d, Fields: fields, Error: msg})
}

// pageRefused turns a refusal of content.CreatePage or UpdatePage into the
// form again, or returns err for the error page.
func (s *Server) pageRefused(w http.ResponseWriter, r *http.Request, d pageFormData, err error) error {
	if fields := invalidFields(err); fields != nil {
		return s.renderPageForm(w, r, http.StatusUnprocessableEntity, d, fields, notSavedPage)
	}
	if errors.Is(err, content.ErrConflict) {
		return s.renderPageForm(w, r, http.StatusConflict, d, fieldErr{"slug": slugTaken}, notSavedPage+" "+slugTaken)
	}
	return err
}

func (s *Server) newPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderPageForm(w, r, http.StatusOK, pageFormData{Form: pageForm{Visible: true, NavOrder: "0"}}, nil, "")
}

func (s *Server) createPage(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r, maxAdminForm); err != nil {
		return err
	}
	f, in, fields := readPageForm(r)
	d := pageFormData{Form: f}
	if len(fields) > 0 {
		return s.renderPageForm(w, r, http.StatusUnprocessableEntity, d, fields, notSavedPage)
	}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		_, err := content.CreatePage(r.Context(), sc, in)
		return err
	}); err != nil {
		return s.pageRefused(w, r, d, err)
	}
	return redirectDone(w, r, "/site_admin/pages", "created")
}

func (s *Server) adminPage(r *http.Request) (content.Page, error) {
	id, err := pathID(r)
	if err != nil {
		return content.Page{}, err
	}
	return content.GetPage(r.Context(), siteFrom(r.Context()).Scope, id)
}

func (s *Server) editPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.adminPage(r)
	if err != nil {
		return err
	}
	return s.renderPageForm(w, r, http.StatusOK, pageFormData{Form: pageFormOf(p), Page: &p}, nil, "")
}

func (s *Server) updatePage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.adminPage(r)
	if err != nil {
		return err
	}
	if err := parseForm(w, r, maxAdminForm); err != nil {
		return err
	}
	f, in, fields := readPageForm(r)
	d := pageFormData{Form: f, Page: &p}
	if len(fields) > 0 {
		return s.renderPageForm(w, r, http.StatusUnprocessableEntity, d, fields, notSavedPage)
	}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		_, err := content.UpdatePage(r.Context(), sc, p.ID, in)
		return err
	}); err != nil {
		return s.pageRefused(w, r, d, err)
	}
	return redirectDone(w, r, "/site_admin/pages", "saved")
}

func (s *Server) deletePage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		return content.DeletePage(r.Context(), sc, id)
	}); err != nil {
		return err
	}
	return redirectDone(w, r, "/site_admin/pages", "deleted")
}

// ---- agency ----

func (s *Server) agencyForm(w http.ResponseWriter, r *http.Request) error {
	a, err := content.GetAgency(r.Context(), siteFrom(r.Context()).Scope)
	if err != nil {
		return err
	}
	return s.renderAdmin(w, r, http.StatusOK, "admin/agency", view{Title: "Agency", Data: a})
}

func (s *Server) saveAgency(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r, maxAdminForm); err != nil {
		return err
	}
	a := content.Agency{Name: r.PostForm.Get("name"), Email: r.PostForm.Get("email"),
		Phone: r.PostForm.Get("phone"), Address: r.PostForm.Get("address")}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		return content.SaveAgency(r.Context(), sc, a)
	}); err != nil {
		if fields := invalidFields(err); fields != nil {
			return s.renderAdmin(w, r, http.StatusUnprocessableEntity, "admin/agency", view{Title: "Agency", Data: a,
				Fields: fields, Error: "The agency details were not saved. Please correct the fields marked below."})
		}
		return err
	}
	return redirectDone(w, r, "/site_admin/agency", "saved")
}
