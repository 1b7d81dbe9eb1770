package core

import "testing"

func TestBindingNames(t *testing.T) {
	for _, tt := range []struct{ secret, prefix string }{
		{"my-db", "MY_DB"}, {"db", "DB"}, {"9lives", "S_9LIVES"}, {"a.b-c", "A_B_C"},
		{"a-very-long-secret-name-that-goes-on-and-on", "A_VERY_LONG_SECRET_NAME_THAT_GO"},
	} {
		if got := BindingPrefix(tt.secret); got != tt.prefix || ValidateBinding(Binding{Component: BindingComponent{"web", "app_v2"}, SecretName: tt.secret, Prefix: got}) != nil {
			t.Errorf("BindingPrefix(%q) = %q, want %q (valid)", tt.secret, got, tt.prefix)
		}
	}
	for _, tt := range []struct{ prefix, key, env string }{
		{"DB", "password", "DB_PASSWORD"}, {"DB", "api-key.v2", "DB_API_KEY_V2"}, {"X", "ÄÖ", "X___"},
	} {
		if got := BindingEnvName(tt.prefix, tt.key); got != tt.env {
			t.Errorf("BindingEnvName(%q, %q) = %q, want %q", tt.prefix, tt.key, got, tt.env)
		}
	}
	for field, b := range map[string]Binding{
		"component":   {Component: BindingComponent{"web", "function_v2"}, SecretName: "s", Prefix: "P"},
		"component ":  {Component: BindingComponent{"Web!", "app_v2"}, SecretName: "s", Prefix: "P"},
		"secret_name": {Component: BindingComponent{"web", "app_v2"}, Prefix: "P"},
		"prefix":      {Component: BindingComponent{"web", "app_v2"}, SecretName: "s", Prefix: "p_lower"},
		"prefix ":     {Component: BindingComponent{"web", "app_v2"}, SecretName: "s", Prefix: "ENDS_"},
	} {
		if err := ValidateBinding(b); err == nil {
			t.Errorf("%s: %+v passed", field, b)
		}
	}
}
