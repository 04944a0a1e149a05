package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// enquiryAnchor is the id of the section that holds an enquiry form. The
// form posts to its page's address with it, and the thank-you redirect
// goes back to it, so whatever the answer is (a mistake to correct, a
// message kept for later, a thank-you) the browser shows it where the
// visitor was looking, without JavaScript.
const enquiryAnchor = "enquiry"

// enquiryForm is an enquiry form as a page draws it (template
// "enquiry_form"): empty, filled with what was typed and why it was not
// sent, or replaced by the thank-you once it was.
type enquiryForm struct {
	Heading string
	Action  string // where it posts, ending in #enquiry
	Button  string
	Enquiry content.Enquiry // what the visitor typed
	Error   string          // why it was not sent, above the form
	Fields  fieldErr        // per-field mistakes
	Sent    string          // the thank-you that replaces the form
	Again   string          // a fresh form, after the thank-you
}

// sendsEnquiry reports whether path takes a public enquiry: /contact or
// /properties/{slug}/enquiry.
func sendsEnquiry(path string) bool { return path == "/contact" || enquiryPath(path) }

// withAnchor is page's address with the enquiry section's anchor.
func withAnchor(page string) string { return page + "#" + enquiryAnchor }

// propertyEnquiryForm is the enquiry form of property p. After a redirect
// with ?sent=1 it is the thank-you.
func propertyEnquiryForm(r *http.Request, p content.Property) enquiryForm {
	page := propertyPath(p.Slug)
	f := enquiryForm{Heading: "Ask about this property", Action: withAnchor(page + "/enquiry"), Button: "Send enquiry", Again: withAnchor(page)}
	if r.Method == http.MethodGet && r.URL.Query().Get("sent") == "1" {
		f.Sent = "Thank you. Your enquiry has been sent to the agent."
	}
	return f
}

// contactForm is the contact page's form; after a redirect with ?sent=1 it
// is the thank-you.
func contactForm(r *http.Request) enquiryForm {
	f := enquiryForm{Heading: "Send us a message", Action: withAnchor("/contact"), Button: "Send message", Again: withAnchor("/contact")}
	if r.Method == http.MethodGet && r.URL.Query().Get("sent") == "1" {
		f.Sent = "Thank you. Your message has been sent."
	}
	return f
}

func (s *Server) propertyEnquiry(w http.ResponseWriter, r *http.Request) error {
	e, err := readEnquiry(w, r)
	if err != nil {
		return err
	}
	if paused(r) {
		return s.pausedEnquiry(w, r, e)
	}
	sc := siteFrom(r.Context()).Scope
	p, err := content.GetVisibleProperty(r.Context(), sc, r.PathValue("slug"))
	if err != nil {
		return err
	}
	e.PropertyID = &p.ID
	again := func(status int, msg string, fields fieldErr) error {
		f := propertyEnquiryForm(r, p)
		f.Enquiry, f.Error, f.Fields = e, msg, fields
		return s.renderPublic(w, r, status, "public/property", propertyView(p, f))
	}
	if sent, err := s.sendEnquiry(w, r, e, again); !sent || err != nil {
		return err
	}
	http.Redirect(w, r, withAnchor(propertyPath(p.Slug)+"?sent=1"), http.StatusSeeOther)
	return nil
}

func (s *Server) contact(w http.ResponseWriter, r *http.Request) error {
	return s.renderPublic(w, r, http.StatusOK, "public/contact", contactView(r, contactForm(r)))
}

// contactView is the contact page around its form.
func contactView(r *http.Request, f enquiryForm) view {
	return view{Title: "Contact us", Data: f, Meta: &pageMeta{URL: "/contact",
		Description: "Contact " + siteFrom(r.Context()).Website.Name + ": send a message, or call or write to the agency."}}
}

func (s *Server) contactSubmit(w http.ResponseWriter, r *http.Request) error {
	e, err := readEnquiry(w, r)
	if err != nil {
		return err
	}
	if paused(r) {
		return s.pausedEnquiry(w, r, e)
	}
	again := func(status int, msg string, fields fieldErr) error {
		f := contactForm(r)
		f.Enquiry, f.Error, f.Fields = e, msg, fields
		return s.renderPublic(w, r, status, "public/contact", contactView(r, f))
	}
	if sent, err := s.sendEnquiry(w, r, e, again); !sent || err != nil {
		return err
	}
	http.Redirect(w, r, withAnchor("/contact?sent=1"), http.StatusSeeOther)
	return nil
}

func readEnquiry(w http.ResponseWriter, r *http.Request) (content.Enquiry, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPublicForm)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return content.Enquiry{}, err
		}
		return content.Enquiry{}, errorPage(http.StatusBadRequest, "Bad request", "The form could not be read. Nothing was sent.")
	}
	return content.Enquiry{
		Name: r.PostForm.Get("name"), Email: r.PostForm.Get("email"),
		Phone: r.PostForm.Get("phone"), Body: r.PostForm.Get("message"),
	}, nil
}

// sendEnquiry checks e, counts it against the client's enquiries to this
// website, and saves it. When the form has a mistake, the limit is reached
// or the website's changes are paused, it is not saved: sendEnquiry draws
// the form again with what the visitor typed (through again) and reports
// sent false.
func (s *Server) sendEnquiry(w http.ResponseWriter, r *http.Request, e content.Enquiry,
	again func(status int, msg string, fields fieldErr) error) (sent bool, err error) {
	st := siteFrom(r.Context())
	const correct = "Your message was not sent. Please correct the form."
	// Checked before it is counted: a form with a mistake costs nothing.
	if err := e.Validate(); err != nil {
		return false, again(http.StatusUnprocessableEntity, correct, invalidFields(err))
	}
	key := throttle.Key{Kind: throttle.Enquiry, WebsiteID: st.Website.ID, Subject: throttle.AddressSubject(requestFrom(r.Context()).Client)}
	d, err := throttle.Take(r.Context(), s.accounts, throttle.Counted{Key: key, Rule: s.enquiries})
	if err != nil {
		return false, err
	}
	if !d.Allowed {
		return false, keepEnquiry(w, http.StatusTooManyRequests, d.RetryAfter,
			"You have sent several messages in a short time, so this one has not been sent yet.", again)
	}
	err = s.tenantWrite(r, func(sc tenant.Scope) error {
		_, err := content.SubmitEnquiry(r.Context(), sc, e)
		return err
	})
	if err == nil {
		return true, nil
	}
	if errors.Is(err, tenant.ErrWritesPaused) {
		// Paused after the request was let in: the write fence refused it.
		return false, s.pausedEnquiry(w, r, e)
	}
	if fields := invalidFields(err); fields != nil {
		return false, again(http.StatusUnprocessableEntity, correct, fields)
	}
	return false, err
}

// keepEnquiry answers an enquiry over the limit, which may be sent later:
// status with Retry-After, and the form again with what the visitor typed,
// saying why and when to send it again.
func keepEnquiry(w http.ResponseWriter, status int, wait time.Duration, why string,
	again func(status int, msg string, fields fieldErr) error) error {
	return again(status, keptText(w, wait, why), nil)
}

// keptText sets Retry-After to wait and says why an enquiry was not sent,
// that its text is kept, and when to send it again.
func keptText(w http.ResponseWriter, wait time.Duration, why string) string {
	in := waitText(setRetryAfter(w, wait))
	return why + " Your text is kept below: please send it again in " + in + ", or contact the agency by phone or email."
}

// pausedText is why an enquiry to a website whose changes are paused was
// not sent.
const pausedText = "This website is being maintained and cannot take changes right now, so your message has not been sent yet."

// paused reports whether the request's website takes no changes now (a
// move's freeze): its enquiries are answered by pausedEnquiry.
func paused(r *http.Request) bool {
	return siteFrom(r.Context()).Website.Status == registry.StatusReadOnly
}

// keptEnquiry is the page pausedEnquiry draws.
type keptEnquiry struct {
	Form enquiryForm
	Back *pageLink // the page the form was on, when it is not the form's own
}

// pausedEnquiry answers an enquiry to a website whose changes are paused:
// 503 with Retry-After, and the form again, filled with what the visitor
// typed, posting where it came from. Like an error page it never asks the
// shard, which a move may be busy copying from while visitors keep
// sending: the site's name from the registry is enough for its header and
// navigation.
func (s *Server) pausedEnquiry(w http.ResponseWriter, r *http.Request, e content.Enquiry) error {
	f := enquiryForm{Heading: "Your message", Action: withAnchor(r.URL.Path), Button: "Send again", Enquiry: e,
		Error: keptText(w, retryAfter, pausedText)}
	d := keptEnquiry{Form: f}
	if enquiryPath(r.URL.Path) {
		d.Back = &pageLink{Href: strings.TrimSuffix(r.URL.Path, "/enquiry"), Text: "Back to the property"}
	}
	ri := requestFrom(r.Context())
	v := view{Title: "Changes are paused", Data: d, Site: &chrome{Name: ri.SiteName}, Path: r.URL.Path, RequestID: ri.ID}
	v.Meta = publicMeta(r, v.Site, v.Title, &pageMeta{NoIndex: true})
	return s.pages.render(w, http.StatusServiceUnavailable, "public/enquiry_kept", v)
}
