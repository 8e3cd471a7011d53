package rules

import "github.com/promgov/promgov/pkg/rules/ruleconfig"

// The configuration of the rules lives in pkg/rules/ruleconfig (what
// versions or reads it need not link the engine); these are its names in
// the engine's package.
type (
	Config           = ruleconfig.Config
	RuleConfig       = ruleconfig.RuleConfig
	ScopeConfig      = ruleconfig.ScopeConfig
	NamingConfig     = ruleconfig.NamingConfig
	LabelsConfig     = ruleconfig.LabelsConfig
	NormalizeConfig  = ruleconfig.NormalizeConfig
	LimitsConfig     = ruleconfig.LimitsConfig
	DeprecatedConfig = ruleconfig.DeprecatedConfig
	UnusedConfig     = ruleconfig.UnusedConfig
	Mode             = ruleconfig.Mode
	Action           = ruleconfig.Action
	Overflow         = ruleconfig.Overflow
)

// See ruleconfig.
const (
	DefaultNameValidationScheme = ruleconfig.DefaultNameValidationScheme
	DefaultTypeCacheSize        = ruleconfig.DefaultTypeCacheSize
	DefaultTestMaxBodyBytes     = ruleconfig.DefaultTestMaxBodyBytes
	DefaultTagLabel             = ruleconfig.DefaultTagLabel

	ModeEnforce   = ruleconfig.ModeEnforce
	ModeShadow    = ruleconfig.ModeShadow
	ActionDrop    = ruleconfig.ActionDrop
	ActionRewrite = ruleconfig.ActionRewrite
	ActionTag     = ruleconfig.ActionTag
	ActionWarn    = ruleconfig.ActionWarn

	KindRelabel = ruleconfig.KindRelabel
	KindNaming  = ruleconfig.KindNaming
	KindLabels  = ruleconfig.KindLabels
	KindLimits  = ruleconfig.KindLimits
	KindPlugin  = ruleconfig.KindPlugin
	KindUnused  = ruleconfig.KindUnused

	KindDeprecated = ruleconfig.KindDeprecated

	OverflowTruncate = ruleconfig.OverflowTruncate
	OverflowHash     = ruleconfig.OverflowHash

	BuiltinUUID   = ruleconfig.BuiltinUUID
	BuiltinNumber = ruleconfig.BuiltinNumber
	BuiltinHexID  = ruleconfig.BuiltinHexID
	BuiltinIP     = ruleconfig.BuiltinIP
	BuiltinEmail  = ruleconfig.BuiltinEmail

	hashSuffixLen = ruleconfig.HashSuffixLen
)

// ErrInvalidConfig wraps every error returned by LoadConfig and Compile for
// a configuration the user has to fix.
var ErrInvalidConfig = ruleconfig.ErrInvalidConfig

// DefaultConfig returns a Config with no rules and default settings.
func DefaultConfig() Config { return ruleconfig.DefaultConfig() }

// LoadConfig parses the rules section out of a whole promgov configuration
// document (ruleconfig.LoadConfig).
func LoadConfig(data []byte) (Config, error) { return ruleconfig.LoadConfig(data) }

// LoadConfigFile reads path and calls LoadConfig.
func LoadConfigFile(path string) (Config, error) { return ruleconfig.LoadConfigFile(path) }
