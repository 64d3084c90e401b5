// Lint rules for the whole tree. Type-aware rules are left out: they would triple the time of a CI run for
// little the compiler's strict mode does not already catch.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'data/**', 'prebuilt/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // A local named like a global (ReferenceError, name, event...) hides the global and misleads readers.
      'no-shadow': 'off',
      '@typescript-eslint/no-shadow': ['error', { builtinGlobals: true, hoist: 'functions', ignoreTypeValueShadow: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);
