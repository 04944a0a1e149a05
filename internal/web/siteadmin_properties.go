package web

import (
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

type adminPropertiesData struct {
	Results content.Results
	Pager   pager
	// Filter is the search and filters applied, and Filtered whether any
	// is; Notices say what was left out of what the address asked for.
	Filter   content.ListFilter
	Filtered bool
	Notices  []string
}

// adminProperties is the list of the website's properties, newest first,
// searched by reference or title and filtered by status and listing, a page
// at a time. The search and filters are in the address, so a page of the
// list can be bookmarked, and the pager keeps them.
func (s *Server) adminProperties(w http.ResponseWriter, r *http.Request) error {
	f, notices := propertyListFilter(r)
	res, err := content.ListProperties(r.Context(), siteFrom(r.Context()).Scope, f)
	if err != nil {
		return err
	}
	applied := url.Values{}
	for k, v := range map[string]string{"q": f.Text, "status": f.Status, "listing": f.Listing} {
		if v != "" {
			applied.Set(k, v)
		}
	}
	return s.renderAdmin(w, r, http.StatusOK, "admin/properties", view{Title: "Properties",
		Data: adminPropertiesData{
			Results: res, Filter: f, Filtered: len(applied) > 0, Notices: notices,
			// The pager's links carry the filters applied, not what the
			// address asked for.
			Pager: pager{Page: res.Page, Pages: res.Pages(), URL: &url.URL{Path: r.URL.Path, RawQuery: applied.Encode()}},
		}})
}

// propertyListFilter reads the list's search and filters from the address.
// What cannot be used (a status the list does not know, a search too long)
// is left out with a notice saying so, rather than refused: the list is
// still shown, filtered by the rest.
func propertyListFilter(r *http.Request) (content.ListFilter, []string) {
	q := r.URL.Query()
	f := content.ListFilter{Text: q.Get("q"), Status: q.Get("status"), Listing: q.Get("listing"),
		Page: pageParam(r), PerPage: adminPerPage}
	problems := invalidFields(f.Validate())
	var notices []string
	for _, c := range []struct {
		field, what string
		value       *string
	}{{"q", "Your search", &f.Text}, {"status", "The status filter", &f.Status}, {"listing", "The listing filter", &f.Listing}} {
		if msg := problems[c.field]; msg != "" {
			notices = append(notices, c.what+" was not used: "+strings.ToLower(msg[:1])+msg[1:])
			*c.value = ""
		}
	}
	return f, notices
}

// propertyForm is the property form as typed, so that a refused form comes
// back with exactly what the editor wrote, numbers that are not numbers
// included.
type propertyForm struct {
	Reference, Title, Description, Address, City, Region, PostalCode, Country string
	Latitude, Longitude, Bedrooms, Bathrooms, Garages, FloorArea, YearBuilt   string
	PropertyType                                                              string
	ForSale                                                                   bool
	SalePrice, SaleCurrency                                                   string
	ForRent                                                                   bool
	RentPrice, RentCurrency                                                   string
	Visible, Highlighted                                                      bool
	Features                                                                  string // one per line
}

// propertyFormData is what the property form template receives.
type propertyFormData struct {
	Form      propertyForm
	Property  *content.Property // nil on the new-property form
	MaxPhotos int
}

func formOf(p content.Property) propertyForm {
	in := p.Input()
	return propertyForm{
		Reference: in.Reference, Title: in.Title, Description: in.Description, Address: in.Address,
		City: in.City, Region: in.Region, PostalCode: in.PostalCode, Country: in.Country,
		Latitude: floatText(in.Latitude), Longitude: floatText(in.Longitude),
		Bedrooms: strconv.Itoa(in.Bedrooms), Bathrooms: strconv.Itoa(in.Bathrooms), Garages: strconv.Itoa(in.Garages),
		FloorArea: floatText(in.FloorAreaSqm), YearBuilt: intText(in.YearBuilt), PropertyType: in.PropertyType,
		ForSale: in.ForSale, SalePrice: moneyText(in.SalePriceCents), SaleCurrency: in.SaleCurrency,
		ForRent: in.ForRent, RentPrice: moneyText(in.RentPriceCentsMonthly), RentCurrency: in.RentCurrency,
		Visible: in.Visible, Highlighted: in.Highlighted,
		Features: strings.Join(in.Features, "\n"),
	}
}

func floatText(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func intText(n *int) string {
	if n == nil {
		return ""
	}
	return strconv.Itoa(*n)
}

// moneyText shows cents in whole units as parseMoney reads them back.
func moneyText(c *int64) string {
	if c == nil {
		return ""
	}
	s := strconv.FormatInt(*c/100, 10)
	if f := *c % 100; f != 0 {
		s += fmt.Sprintf(".%02d", f)
	}
	return s
}

// readPropertyForm reads the form's fields as typed and turns them into a
// content.PropertyInput. Fields that cannot be parsed are reported under
// the same names content's validation uses, with what is wrong.
func readPropertyForm(r *http.Request) (propertyForm, content.PropertyInput, fieldErr) {
	get := r.PostForm.Get
	checked := func(name string) bool { v := get(name); return v != "" && v != "0" }
	f := propertyForm{
		Reference: get("reference"), Title: get("title"), Description: get("description"),
		Address: get("address"), City: get("city"), Region: get("region"),
		PostalCode: get("postal_code"), Country: get("country"),
		Latitude: get("latitude"), Longitude: get("longitude"),
		Bedrooms: get("bedrooms"), Bathrooms: get("bathrooms"), Garages: get("garages"),
		FloorArea: get("floor_area_sqm"), YearBuilt: get("year_built"), PropertyType: get("property_type"),
		ForSale: checked("for_sale"), SalePrice: get("sale_price"), SaleCurrency: get("sale_currency"),
		ForRent: checked("for_rent"), RentPrice: get("rent_price"), RentCurrency: get("rent_currency"),
		Visible: checked("visible"), Highlighted: checked("highlighted"),
		Features: get("features"),
	}
	in := content.PropertyInput{
		Reference: f.Reference, Title: f.Title, Description: f.Description, Address: f.Address,
		City: f.City, Region: f.Region, PostalCode: f.PostalCode, Country: f.Country,
		PropertyType: f.PropertyType, ForSale: f.ForSale, SaleCurrency: f.SaleCurrency,
		ForRent: f.ForRent, RentCurrency: f.RentCurrency, Visible: f.Visible, Highlighted: f.Highlighted,
	}
	fields := fieldErr{}
	wholeNumber := func(field, label, s string, into *int) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			fields[field] = label + " must be a whole number such as 3."
			return
		}
		*into = n
	}
	wholeNumber("bedrooms", "Bedrooms", f.Bedrooms, &in.Bedrooms)
	wholeNumber("bathrooms", "Bathrooms", f.Bathrooms, &in.Bathrooms)
	wholeNumber("garages", "Garages", f.Garages, &in.Garages)
	if strings.TrimSpace(f.YearBuilt) != "" {
		var y int
		if wholeNumber("year_built", "Year built", f.YearBuilt, &y); fields["year_built"] == "" {
			in.YearBuilt = &y
		}
	}
	number := func(field, label, example, s string) *float64 {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			fields[field] = label + " must be a number such as " + example + "."
			return nil
		}
		return &v
	}
	in.Latitude = number("latitude", "Latitude", "41.3851", f.Latitude)
	in.Longitude = number("longitude", "Longitude", "2.1734", f.Longitude)
	in.FloorAreaSqm = number("floor_area_sqm", "Floor area", "120.5", f.FloorArea)
	var problem string
	if in.SalePriceCents, problem = parseMoney(f.SalePrice); problem != "" {
		fields["sale_price_cents"] = "Sale price " + problem
	}
	if in.RentPriceCentsMonthly, problem = parseMoney(f.RentPrice); problem != "" {
		fields["rent_price_cents_monthly"] = "Monthly rent " + problem
	}
	for _, line := range strings.Split(f.Features, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			in.Features = append(in.Features, line)
		}
	}
	// Validate too, so that the editor sees every problem at once; a field
	// that could not be parsed keeps its parsing message.
	for k, msg := range invalidFields(in.Validate()) {
		if _, ok := fields[k]; !ok {
			fields[k] = msg
		}
	}
	return f, in, fields
}

// upload is a photo read from a form, checked and ready to store.
type upload struct {
	name string
	data []byte
}

// readPhotos reads and checks every photo of the form's "photos" field before
// anything is stored, so one bad file refuses the whole form, and so does one
// file too many for a property that has have photos. A file input left empty
// sends a part with no name and no bytes; it is skipped.
func readPhotos(r *http.Request, limits content.PhotoLimits, have int) ([]upload, string) {
	if r.MultipartForm == nil {
		return nil, ""
	}
	var files []*multipart.FileHeader
	for _, fh := range r.MultipartForm.File["photos"] {
		if fh.Filename == "" && fh.Size == 0 {
			continue
		}
		files = append(files, fh)
	}
	if len(files) > maxPhotosPerUpload {
		return nil, fmt.Sprintf("Upload at most %d photos at a time.", maxPhotosPerUpload)
	}
	if m := invalidFields(limits.Room(have, len(files)))["photo"]; m != "" {
		return nil, m
	}
	var out []upload
	for _, fh := range files {
		name := fh.Filename
		if name == "" {
			name = "The photo"
		}
		if fh.Size > content.MaxPhotoBytes {
			return nil, fmt.Sprintf("%s: the photo is larger than the %d MiB limit.", name, content.MaxPhotoBytes>>20)
		}
		data, err := readFile(fh)
		if err != nil {
			return nil, name + ": the file could not be read."
		}
		if _, err := content.CheckPhoto(data, limits); err != nil {
			msg := "the file is not an image."
			if m := invalidFields(err)["photo"]; m != "" {
				// It follows the file's name: "big.png: the photo is ...".
				msg = strings.ToLower(m[:1]) + m[1:]
			}
			return nil, name + ": " + msg
		}
		out = append(out, upload{name: name, data: data})
	}
	return out, ""
}

func readFile(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, content.MaxPhotoBytes+1))
}

func (s *Server) newProperty(w http.ResponseWriter, r *http.Request) error {
	return s.renderPropertyForm(w, r, http.StatusOK, propertyFormData{
		Form: propertyForm{Visible: true, ForSale: true}}, nil, "")
}

func (s *Server) renderPropertyForm(w http.ResponseWriter, r *http.Request, status int, d propertyFormData, fields fieldErr, msg string) error {
	d.MaxPhotos = maxPhotosPerUpload
	title := "New property"
	if d.Property != nil {
		title = "Edit property"
	}
	return s.renderAdmin(w, r, status, "admin/property_form", view{Title: title, Data: d, Fields: fields, Error: msg})
}

const (
	notSavedProperty  = "The property was not saved. Please correct the fields marked below."
	choosePhotosAgain = " Choose the photos again: a browser does not keep them after a refused form."
)

// notSaved is the message of a refused property form; the photos it
// carried must be chosen again.
func notSaved(r *http.Request) string {
	if r.MultipartForm != nil && len(r.MultipartForm.File["photos"]) > 0 {
		return notSavedProperty + choosePhotosAgain
	}
	return notSavedProperty
}

func (s *Server) createProperty(w http.ResponseWriter, r *http.Request) error {
	if err := parseUpload(w, r); err != nil {
		return err
	}
	r = s.bodyRead(r)
	defer cleanupUpload(r)
	f, in, fields := readPropertyForm(r)
	photos, photoProblem := readPhotos(r, s.photos, 0)
	if photoProblem != "" {
		fields["photos"] = photoProblem
	}
	d := propertyFormData{Form: f}
	if len(fields) > 0 {
		return s.renderPropertyForm(w, r, http.StatusUnprocessableEntity, d, fields, notSaved(r))
	}
	data := make([][]byte, len(photos))
	for i, ph := range photos {
		data[i] = ph.data
	}
	var p content.Property
	// The property and its photos are one transaction: a failure at any
	// point leaves nothing behind. The photos were read before anything was
	// written, so a write made again after a move stores the same bytes.
	if err := s.tenantWrite(r, func(sc tenant.Scope) (err error) {
		p, err = content.CreatePropertyWithPhotos(r.Context(), sc, in, data, s.photos)
		return err
	}); err != nil {
		return s.propertyRefused(w, r, d, err)
	}
	return redirectDone(w, r, "/site_admin/properties/"+p.ID.String()+"/edit", "created")
}

// propertyRefused turns a refusal of content.CreateProperty or
// UpdateProperty into the form again, or returns err for the error page.
func (s *Server) propertyRefused(w http.ResponseWriter, r *http.Request, d propertyFormData, err error) error {
	if fields := invalidFields(err); fields != nil {
		return s.renderPropertyForm(w, r, http.StatusUnprocessableEntity, d, fields, notSaved(r))
	}
	if errors.Is(err, content.ErrConflict) {
		return s.renderPropertyForm(w, r, http.StatusConflict, d,
			fieldErr{"reference": "That reference is already used by another property."}, notSaved(r))
	}
	return err
}

func (s *Server) adminProperty(r *http.Request) (content.Property, error) {
	id, err := pathID(r)
	if err != nil {
		return content.Property{}, err
	}
	return content.GetProperty(r.Context(), siteFrom(r.Context()).Scope, id)
}

func (s *Server) editProperty(w http.ResponseWriter, r *http.Request) error {
	p, err := s.adminProperty(r)
	if err != nil {
		return err
	}
	return s.renderPropertyForm(w, r, http.StatusOK, propertyFormData{Form: formOf(p), Property: &p}, nil, "")
}

func (s *Server) updateProperty(w http.ResponseWriter, r *http.Request) error {
	// The property is looked up first, so another website's id is a 404
	// whatever the form says.
	p, err := s.adminProperty(r)
	if err != nil {
		return err
	}
	if err := parseUpload(w, r); err != nil {
		return err
	}
	r = s.bodyRead(r)
	defer cleanupUpload(r)
	f, in, fields := readPropertyForm(r)
	d := propertyFormData{Form: f, Property: &p}
	if len(fields) > 0 {
		return s.renderPropertyForm(w, r, http.StatusUnprocessableEntity, d, fields, notSavedProperty)
	}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		_, err := content.UpdateProperty(r.Context(), sc, p.ID, in)
		return err
	}); err != nil {
		return s.propertyRefused(w, r, d, err)
	}
	return redirectDone(w, r, "/site_admin/properties/"+p.ID.String()+"/edit", "saved")
}

func (s *Server) deleteProperty(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		return content.DeleteProperty(r.Context(), sc, id)
	}); err != nil {
		return err
	}
	return redirectDone(w, r, "/site_admin/properties", "deleted")
}

func (s *Server) uploadPhotos(w http.ResponseWriter, r *http.Request) error {
	p, err := s.adminProperty(r)
	if err != nil {
		return err
	}
	if err := parseUpload(w, r); err != nil {
		return err
	}
	r = s.bodyRead(r)
	defer cleanupUpload(r)
	photos, problem := readPhotos(r, s.photos, len(p.Photos))
	if problem == "" && len(photos) == 0 {
		problem = "Choose a photo to upload."
	}
	if problem != "" {
		return s.renderPropertyForm(w, r, http.StatusUnprocessableEntity,
			propertyFormData{Form: formOf(p), Property: &p}, fieldErr{"photos": problem}, "No photo was added. "+problem)
	}
	for _, ph := range photos {
		// Read before anything was written: a write made again after a
		// move stores the same bytes, without reading the body again.
		if err := s.tenantWrite(r, func(sc tenant.Scope) error {
			_, err := content.AddPhoto(r.Context(), sc, p.ID, ph.data, s.photos)
			return err
		}); err != nil {
			return err
		}
	}
	return redirectDone(w, r, "/site_admin/properties/"+p.ID.String()+"/edit", "photos")
}

func (s *Server) deletePhoto(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := parseForm(w, r, maxSmallForm); err != nil {
		return err
	}
	if err := s.tenantWrite(r, func(sc tenant.Scope) error {
		return content.DeletePhoto(r.Context(), sc, id)
	}); err != nil {
		return err
	}
	// The form says which property to go back to; it only steers the
	// redirect, within the admin.
	back := "/site_admin/properties"
	if pid, err := uuid.Parse(r.PostForm.Get("property")); err == nil {
		back += "/" + pid.String() + "/edit"
	}
	return redirectDone(w, r, back, "photo_deleted")
}

// movePhoto puts one of a property's photos at the position the form gives,
// counted from 1: position 1 makes it the cover.
func (s *Server) movePhoto(w http.ResponseWriter, r *http.Request) error {
	propertyID, err := pathID(r)
	if err != nil {
		return err
	}
	photoID, err := content.ParseID(r.PathValue("photo"))
	if err != nil {
		return err
	}
	if err := parseForm(w, r, maxSmallForm); err != nil {
		return err
	}
	// What is not a number reads as 0 or as the largest int, positions no
	// photo has, so it is refused with the positions there are.
	position, _ := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("position")))
	err = s.tenantWrite(r, func(sc tenant.Scope) error {
		return content.MovePhoto(r.Context(), sc, propertyID, photoID, position)
	})
	if problem := invalidFields(err)["position"]; problem != "" {
		p, err := s.adminProperty(r)
		if err != nil {
			return err
		}
		return s.renderPropertyForm(w, r, http.StatusUnprocessableEntity, propertyFormData{Form: formOf(p), Property: &p},
			fieldErr{"position": problem}, "The photo was not moved. "+problem)
	}
	if err != nil {
		return err
	}
	done := "photo_moved"
	if position == 1 {
		done = "cover"
	}
	return redirectDone(w, r, "/site_admin/properties/"+propertyID.String()+"/edit#photo-"+photoID.String(), done)
}
