package web

import (
	"fmt"
	"strings"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/units"
)

// currencySymbols are the currencies a price shows by their symbol, written
// before the amount ("€250,000"); any other shows its code ("CHF 250,000").
// The sites are in English, so every amount has English separators: commas
// between thousands, a point before the cents.
var currencySymbols = map[string]string{"EUR": "€", "GBP": "£", "USD": "$"}

// formatMoney is how every page, public or site admin, shows a price: the
// currency's symbol or code, whole units with thousands separators, and
// cents only when there are any: "€250,000", "£1,250.50", "CHF 980".
func formatMoney(cents *int64, currency string) string {
	if cents == nil {
		return "Price on application"
	}
	c := *cents
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	amount := units.Count(c / 100)
	if frac := c % 100; frac != 0 {
		amount += fmt.Sprintf(".%02d", frac)
	}
	currency = strings.ToUpper(strings.TrimSpace(currency))
	switch symbol, ok := currencySymbols[currency]; {
	case ok:
		return sign + symbol + amount
	case currency != "":
		return currency + " " + sign + amount
	}
	return sign + amount
}

// bedroomsText is how a card counts bedrooms: none is a studio.
func bedroomsText(n int) string {
	if n == 0 {
		return "Studio"
	}
	return fmt.Sprintf("%d bed", n)
}

// cardFacts is the line under a property's title on a card: its city,
// bedrooms, bathrooms and type, each when known ("Lisbon · 2 bed · 1 bath ·
// Apartment", "Porto · Studio · 1 bath"). A studio's type is not said twice.
func cardFacts(p content.Property) string {
	var facts []string
	if p.City != "" {
		facts = append(facts, p.City)
	}
	facts = append(facts, bedroomsText(p.Bedrooms))
	if p.Bathrooms > 0 {
		facts = append(facts, fmt.Sprintf("%d bath", p.Bathrooms))
	}
	if p.PropertyType != "" && !(p.Bedrooms == 0 && strings.EqualFold(p.PropertyType, "studio")) {
		facts = append(facts, p.PropertyType)
	}
	return strings.Join(facts, " · ")
}
