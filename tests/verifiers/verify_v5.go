// Verify a token as strictly as the Go seed's library, golang-jwt v5, would. Only Debian's
// golang-jwt v4 can be installed here (no Go module proxy), so this program uses v4's parser and
// signature check and adds, by hand, the checks in which v5 is stricter than v4. The same
// stdin/stdout protocol as verify.go:
// stdin: {"token", "secret", "alg": "HS256"|"HS512", "kind": "reqio"|"reditus", "audience"?}
// stdout: one JSON line {"ok": true, "claims", "header"} or {"ok": false, "error"};
// exit 0 accepted, 1 rejected, 2 usage error.
//
// A token is accepted only when both of v5's ways of reading it accept it:
//   - the seed's own struct (RegisteredClaims embedded), decoded by encoding/json:
//     sub must be a string, aud a string or an array of strings, iat and exp numbers;
//   - v5's MapClaims getters (GetSubject, GetAudience, GetIssuedAt, GetExpirationTime,
//     GetNotBefore), which return ErrInvalidType for any other JSON type: written out below.
//
// The validation is the one a careful v5 backend sets up: only the expected algorithm, the
// expected audience, exp required and not passed, iat required and not in the future.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// errInvalidType is v5's jwt.ErrInvalidType: a registered claim of the wrong JSON type.
var errInvalidType = errors.New("invalid type for claim")

type request struct {
	Token    string `json:"token"`
	Secret   string `json:"secret"`
	Alg      string `json:"alg"`
	Kind     string `json:"kind"`
	Audience string `json:"audience"`
}

// The seed's struct (shared/seeds/reqio-go.txt), field for field; v4's RegisteredClaims has
// the same fields, JSON names and types as v5's.
type reqioClaims struct {
	Email  string         `json:"email"`
	Traits map[string]any `json:"traits"`
	jwt.RegisteredClaims
}

type reditusClaims struct {
	ProductId string `json:"ProductId"`
	UserId    string `json:"UserId"`
	jwt.RegisteredClaims
}

func finish(result map[string]any, code int) {
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
	os.Exit(code)
}

func reject(err error) {
	finish(map[string]any{"ok": false, "error": err.Error()}, 1)
}

// v5's MapClaims.GetSubject (and GetIssuer): absent or a string.
func mapString(claims jwt.MapClaims, name string) error {
	switch claims[name].(type) {
	case nil, string:
		return nil
	}
	return fmt.Errorf("%w: %s is invalid (not a string)", errInvalidType, name)
}

// v5's MapClaims.GetAudience: absent, a string, or an array whose items are all strings.
func mapAudience(claims jwt.MapClaims) error {
	switch aud := claims["aud"].(type) {
	case nil, string:
		return nil
	case []any:
		for _, item := range aud {
			if _, ok := item.(string); !ok {
				return fmt.Errorf("%w: aud is invalid (an item is not a string)", errInvalidType)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: aud is invalid (not a string or an array)", errInvalidType)
}

// v5's MapClaims.GetExpirationTime, GetIssuedAt, GetNotBefore: absent or a JSON number.
func mapDate(claims jwt.MapClaims, name string) error {
	switch claims[name].(type) {
	case nil, float64, json.Number:
		return nil
	}
	return fmt.Errorf("%w: %s is invalid (not a number)", errInvalidType, name)
}

// mapTypes reads the registered claims as v5's MapClaims getters do; required claims must
// also be present.
func mapTypes(claims jwt.MapClaims, required ...string) error {
	for _, name := range required {
		if _, ok := claims[name]; !ok {
			return fmt.Errorf("claim %s is required", name)
		}
	}
	for _, check := range []error{
		mapString(claims, "sub"), mapString(claims, "iss"), mapAudience(claims),
		mapDate(claims, "iat"), mapDate(claims, "exp"), mapDate(claims, "nbf"),
	} {
		if check != nil {
			return check
		}
	}
	return nil
}

// v5's validator with WithExpirationRequired and WithIssuedAt: exp present and not passed,
// iat not in the future, nbf passed. (v4 checks the same, but lets a missing exp through.)
func validTimes(c *jwt.RegisteredClaims, expRequired bool) error {
	now := time.Now()
	if !c.VerifyExpiresAt(now, expRequired) {
		return errors.New("token is expired or has no exp")
	}
	if !c.VerifyIssuedAt(now, false) || !c.VerifyNotBefore(now, false) {
		return errors.New("token used before issued")
	}
	return nil
}

func parse(token string, claims jwt.Claims, secret string, alg string) (*jwt.Token, error) {
	key := func(*jwt.Token) (any, error) { return []byte(secret), nil }
	return jwt.ParseWithClaims(token, claims, key, jwt.WithValidMethods([]string{alg}))
}

// looseTypes checks the signature, then reads the claims as v5's MapClaims getters do: v5
// reports a claim of the wrong type before anything else.
func looseTypes(token string, secret string, alg string, required ...string) error {
	key := func(*jwt.Token) (any, error) { return []byte(secret), nil }
	var loose jwt.MapClaims
	_, err := jwt.ParseWithClaims(token, &loose, key,
		jwt.WithValidMethods([]string{alg}), jwt.WithoutClaimsValidation())
	if err != nil {
		return err
	}
	return mapTypes(loose, required...)
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		finish(map[string]any{"ok": false, "error": "bad request: " + err.Error()}, 2)
	}
	if req.Kind == "reditus" {
		if err := looseTypes(req.Token, req.Secret, "HS512", "iat"); err != nil {
			reject(err)
		}
		var claims reditusClaims
		tok, err := parse(req.Token, &claims, req.Secret, "HS512")
		if err == nil && (claims.ProductId == "" || claims.UserId == "" || claims.IssuedAt == nil) {
			err = errors.New("ProductId, UserId and iat are required")
		}
		if err == nil {
			err = validTimes(&claims.RegisteredClaims, false)
		}
		if err != nil {
			reject(err)
		}
		finish(map[string]any{"ok": true, "header": tok.Header, "claims": map[string]any{
			"ProductId": claims.ProductId, "UserId": claims.UserId, "iat": claims.IssuedAt.Unix(),
		}}, 0)
	}

	if err := looseTypes(req.Token, req.Secret, req.Alg, "sub", "aud", "iat", "exp"); err != nil {
		reject(err)
	}
	var claims reqioClaims
	tok, err := parse(req.Token, &claims, req.Secret, req.Alg)
	if err == nil && (claims.Subject == "" || claims.IssuedAt == nil) {
		err = errors.New("sub and iat are required")
	}
	if err == nil && !claims.VerifyAudience(req.Audience, true) {
		err = errors.New("token has invalid audience")
	}
	if err == nil {
		err = validTimes(&claims.RegisteredClaims, true)
	}
	if err != nil {
		reject(err)
	}
	out := map[string]any{
		"sub": claims.Subject, "aud": []string(claims.Audience),
		"iat": claims.IssuedAt.Unix(), "exp": claims.ExpiresAt.Unix(),
	}
	if claims.Email != "" {
		out["email"] = claims.Email
	}
	if claims.Traits != nil {
		out["traits"] = claims.Traits
	}
	finish(map[string]any{"ok": true, "header": tok.Header, "claims": out}, 0)
}
